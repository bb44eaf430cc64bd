"""A batch enqueue's messages are encoded from one template per batch: they are the messages a single
enqueue sends (the same headers and properties), they run, signed or not, and Celery's publish signals
still see each one."""

from __future__ import annotations

import base64
import json
from typing import Any

from celery import signals

from taskplane import Call
from taskplane.core.protocol import Metric
from taskplane.middleware.metrics import Metrics
from tests.apps import signed_app
from tests.apps.core_app import add, mark, tp
from tests.workers import InProcessWorker

#: What differs between two messages by design: their ids, delivery tag and the time they became ready.
PER_MESSAGE = {"id", "root_id", "argsrepr", "kwargsrepr", "x-taskplane-ready-ms"}


def queued(queue: str = "normal") -> list[dict[str, Any]]:
    """The messages in ``queue``, oldest first."""
    return [json.loads(item) for item in reversed(tp.storage.client.lrange(tp.storage.keys.queue(queue), 0, -1))]


def test_batch_messages_are_the_messages_a_single_enqueue_sends(redis_url: str) -> None:
    single = add.enqueue(1, 2)
    batched = add.enqueue_many([[1, 2], Call((3,), {"b": "x'\"y"})])
    messages = queued()
    assert [m["headers"]["id"] for m in messages] == [single.id, *(h.id for h in batched)]
    first, second, third = messages
    assert {k: v for k, v in first["headers"].items() if k not in PER_MESSAGE} == {
        k: v for k, v in second["headers"].items() if k not in PER_MESSAGE
    }
    for message in (second, third):
        task_id = message["headers"]["id"]
        assert message["headers"]["root_id"] == task_id
        assert message["properties"]["correlation_id"] == task_id
    assert {k: v for k, v in first["properties"].items() if k not in ("correlation_id", "delivery_tag")} == {
        k: v for k, v in second["properties"].items() if k not in ("correlation_id", "delivery_tag")
    }
    assert first["body"] == second["body"]
    assert (second["headers"]["argsrepr"], second["headers"]["kwargsrepr"]) == ("[1, 2]", "{}")
    assert (third["headers"]["argsrepr"], third["headers"]["kwargsrepr"]) == ("[3]", "{'b': 'x\\'\"y'}")
    body = json.loads(base64.b64decode(third["body"]))
    assert body[:2] == [[3], {"b": "x'\"y"}]
    assert len({m["properties"]["delivery_tag"] for m in messages}) == 3


def test_a_batch_runs(worker_in_process: InProcessWorker, redis_url: str) -> None:
    handles = add.enqueue_many([[i, i] for i in range(150)] + [Call((1,), {"b": 2})])
    worker_in_process(tp)
    assert [h.wait(timeout=30).result() for h in handles] == [2 * i for i in range(150)] + [3]
    tp.celery.chain.find(Metrics).flush()  # counted in this process, written within the second
    sent = sum(value for key, value in tp.stores.metrics.read().items() if key[:2] == (Metric.SENT, "t.add"))
    assert sent == 151


def test_a_signed_batch_runs(worker_in_process: InProcessWorker, redis_url: str) -> None:
    handles = signed_app.add.enqueue_many([[1, 2], [3, 4]])
    worker_in_process(signed_app.tp)
    assert [h.wait(timeout=30).result() for h in handles] == [3, 7]
    assert signed_app.tp.dead_letters.find() == []


def test_celery_publish_signals_see_every_batch_message(redis_url: str) -> None:
    seen: list[str] = []

    def before(sender: str, headers: dict[str, Any], **_: Any) -> None:
        headers["x-seen"] = "yes"
        seen.append(headers["id"])

    signals.before_task_publish.connect(before)
    try:
        handles = mark.enqueue_many([["a"], ["b"]])
    finally:
        signals.before_task_publish.disconnect(before)
    assert seen == [h.id for h in handles]
    assert [m["headers"]["x-seen"] for m in queued()] == ["yes", "yes"]
