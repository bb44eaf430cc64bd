"""``priority=0..9`` orders messages within one queue (0 first, as on Celery's Redis transport), also after a
countdown, a retry and a dead-letter requeue; tier order between queues is untouched."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from tests.apps.celery_style.celery_app import tp
from tests.apps.celery_style.tasks import EVENTS, fetch_feed, flaky, report
from tests.workers import StartWorker, wait_for

APP = "tests.apps.celery_style.celery_app:tp"


def ran(redis_url: str) -> list[str]:
    found = [json.loads(item) for item in redis.Redis.from_url(redis_url).lrange(EVENTS, 0, -1)]
    return [event["tag"] for event in found if event["kind"] == "report"]


def test_priority_orders_messages_within_a_queue(redis_url: str, start_worker: StartWorker) -> None:
    # Queued before any worker runs: the default priority of the task (5), then explicit ones
    report.delay("default-5")
    for priority in (9, 0, 7, 3):
        report.apply_async((f"p{priority}",), priority=priority)
    tp.enqueue("tests.apps.celery_style.tasks.report", ["enqueue-default-5"])
    start_worker(app=APP, queues="reports", concurrency=1)
    wait_for(lambda: len(ran(redis_url)) == 6, 30, "every report to run")
    assert ran(redis_url) == ["p0", "p3", "default-5", "enqueue-default-5", "p7", "p9"]


def test_priority_holds_after_a_countdown(redis_url: str, start_worker: StartWorker) -> None:
    for priority in (8, 1, 4):
        report.apply_async((f"p{priority}",), priority=priority, countdown=0.5)
    time.sleep(1.5)
    from taskplane.stores.delayed import DelayedStore

    assert DelayedStore(tp.storage).move_due(["reports"]) == 3  # due now: moved in one step, as a worker would
    start_worker(app=APP, queues="reports", concurrency=1)
    wait_for(lambda: len(ran(redis_url)) == 3, 30, "every report to run")
    assert ran(redis_url) == ["p1", "p4", "p8"]


def test_a_requeued_dead_letter_keeps_its_priority(redis_url: str) -> None:
    client: Any = tp.storage.client
    handle = report.apply_async(("dead",), priority=2)
    # Dead-letter it the way a worker does, from its delivery (priority in its delivery info)
    from taskplane.core.protocol import DeadReason

    raw = client.rpop(tp.storage.keys.queue("reports", 2))
    assert raw is not None and json.loads(raw)["properties"]["priority"] == 2
    letter = tp.failure.bury(
        DeadReason.FAILED, task_id=handle.id, name=report.name, queue="reports", attempts=1, args=["dead"], priority=2
    )
    assert letter.priority == 2
    tp.dead_letters.requeue([handle.id])
    requeued = client.lrange(tp.storage.keys.queue("reports", 2), 0, -1)
    assert [json.loads(item)["headers"]["id"] for item in requeued] == [handle.id]


def attempts(redis_url: str, kind: str) -> list[dict[str, Any]]:
    found = [json.loads(item) for item in redis.Redis.from_url(redis_url).lrange(EVENTS, 0, -1)]
    return [event for event in found if event["kind"] == kind]


def test_retries_keep_their_priority(redis_url: str, start_worker: StartWorker) -> None:
    # self.retry() twice, then success; autoretry_for twice, then the dead letters
    flaky.apply_async((2,), priority=7)
    feed = fetch_feed.apply_async(("http://feed.invalid",), priority=3)
    start_worker(app=APP, queues="normal", concurrency=1)
    wait_for(lambda: len(attempts(redis_url, "flaky")) == 3, 30, "flaky's three attempts")
    wait_for(lambda: tp.handle(feed.id).record().state == "dead", 30, "fetch_feed to be dead-lettered")
    assert [(event["retries"], event["priority"]) for event in attempts(redis_url, "flaky")] == [(0, 7), (1, 7), (2, 7)]
    assert [(event["retries"], event["priority"]) for event in attempts(redis_url, "fetch_feed")] == [
        (0, 3),
        (1, 3),
        (2, 3),
    ]
    letter = tp.dead_letters.get(feed.id)
    assert letter is not None and letter.priority == 3  # and a requeue keeps it (above)
