"""A message due far ahead (a Celery ``eta`` pushed around the producer, or by a plain Celery client) waits
in its queue's delayed store, not in a worker's memory under a lease renewed until then."""

from __future__ import annotations

import json

from taskplane.redis.keys import Keys
from tests.apps.core_app import add, tp
from tests.celery.test_malformed import message
from tests.workers import InProcessWorker, wait_for


def test_a_far_eta_goes_to_the_delayed_store_and_the_worker_runs_on(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    far = message(**{"headers.eta": "9999-12-31T00:00:00+00:00", "headers.id": "far-1"})
    tp.storage.client.lpush(Keys().queue("normal"), json.dumps(far))
    worker_in_process(tp)
    assert add.enqueue(2, 3).result(timeout=20) == 5  # fetched after the far one: the worker runs on
    delayed = tp.storage.keys.delayed("normal")
    wait_for(lambda: tp.storage.client.zcard(delayed) == 1, 10, "the far message in the delayed store")
    wait_for(lambda: tp.storage.client.hlen(tp.storage.keys.unacked("normal")) == 0, 10, "nothing in flight")
    stored = json.loads(tp.storage.client.zrange(delayed, 0, -1)[0])
    assert stored["headers"]["id"] == "far-1" and stored["headers"]["x-taskplane-eta"].startswith("9999-12-31")
    assert "eta" not in stored["headers"]  # stored as a publish stores a countdown: due by the delayed store
