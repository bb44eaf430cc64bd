"""The transport: tier order between queues and countdowns kept broker-side."""

from __future__ import annotations

import time

from taskplane.redis.keys import Keys
from tests.apps.core_app import events, mark, mark_critical, slow, tp
from tests.workers import InProcessWorker, wait_for


def test_a_critical_task_enqueued_behind_1000_normal_tasks_runs_next(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    # Given 1,000 normal tasks queued and a one-slot worker busy with them
    client = tp.storage.client
    for index in range(1000):
        mark.enqueue(f"n{index}")
    worker_in_process(tp)
    wait_for(lambda: len(events("mark")) >= 5, 30, "first normal tasks")
    # When a critical task is enqueued
    critical = mark_critical.enqueue("CRITICAL")
    enqueued = time.time()  # the worker notes its marks with this process's clock
    critical.wait(timeout=20)
    # Then it starts next: once the enqueue returned, at most the tasks already fetched run before it, the
    # one running and the one held for the next free process (counted from the moment the enqueue
    # returned, not from a count taken before it: tasks that finish while the enqueue is on its way are
    # not behind the critical one)
    marks = events("mark")
    position = [e["tag"] for e in marks].index("CRITICAL")
    overtaking = [e["tag"] for e in marks[:position] if e["at"] > enqueued]
    assert len(overtaking) <= 2, overtaking
    assert client.llen(Keys().queue("normal")) > 500  # the backlog was still there


def test_countdown_is_honoured_within_a_second_and_waits_broker_side(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    worker_in_process(tp)
    enqueued = time.time()
    handle = slow.enqueue_with((0, "later"), countdown=2)
    # While it waits, it sits in the delayed store, not in the queue or a worker
    assert tp.queues.stats()[2]["delayed"] == 1 and tp.queues.stats()[2]["ready"] == 0
    assert tp.handle(handle.id).record().state == "scheduled"
    handle.wait(timeout=20)
    started = events("start")[0]["at"]
    assert 2.0 <= started - enqueued < 3.0, started - enqueued
