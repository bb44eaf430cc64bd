"""Tiers, cluster-wide rate limits, uniqueness and the broker-side delayed store."""

from __future__ import annotations

import time

from tests.apps.core_app import events, limited, mark, mark_critical, slow, tp, unique
from tests.integration.workers import wait_for


def test_a_10_per_second_limit_holds_across_two_worker_processes(start_worker, redis_url):
    # Given two separate worker processes with two slots each
    start_worker(concurrency=2)
    start_worker(concurrency=2)
    # When 80 tasks limited to 10/s cluster-wide arrive at once
    for index in range(80):
        limited.enqueue(index)
    wait_for(lambda: len(events("limited")) >= 70, 30, "70 limited tasks")
    starts = sorted(e["at"] for e in events("limited"))
    # Then over any 5 s the count is 50 +-10%
    first = starts[0]
    in_window = [t for t in starts if first <= t < first + 5.0]
    assert 45 <= len(in_window) <= 55, len(in_window)
    # and both workers took part (the limit is shared, not per worker)
    assert len({e["pid"] for e in events("limited")}) >= 2


def test_unique_for_returns_the_existing_id_while_queued(redis_url):
    first = unique.enqueue("report-7")
    again = unique.enqueue("report-7")
    other = unique.enqueue("report-8")
    assert again.id == first.id and again.existing and not first.existing
    assert other.id != first.id
    assert tp.storage.client.llen("normal") == 2  # no second message for report-7


def test_unique_lock_is_released_when_the_task_ends(start_worker, redis_url):
    start_worker()
    first = unique.enqueue("x")
    first.wait(timeout=20)
    later = unique.enqueue("x")
    assert later.id != first.id and not later.existing


def test_a_critical_task_enqueued_behind_1000_normal_tasks_runs_next(start_worker, redis_url):
    # Given 1,000 normal tasks queued and a one-slot worker busy with them
    client = tp.storage.client
    for index in range(1000):
        mark.enqueue(f"n{index}")
    start_worker(concurrency=1)
    wait_for(lambda: len(events("mark")) >= 5, 30, "first normal tasks")
    # When a critical task is enqueued
    before = len(events("mark"))
    critical = mark_critical.enqueue("CRITICAL")
    critical.wait(timeout=20)
    # Then it starts next: at most the one task already fetched runs before it
    tags = [e["tag"] for e in events("mark")]
    position = tags.index("CRITICAL")
    assert position - before <= 1, (before, position)
    assert client.llen("normal") > 500  # the backlog was still there


def test_countdown_is_honoured_within_a_second_and_waits_broker_side(start_worker, redis_url):
    start_worker()
    enqueued = time.time()
    handle = slow.enqueue_with((0, "later"), countdown=2)
    # While it waits, it sits in the delayed store, not in the queue or a worker
    assert tp.queues.stats()[2]["delayed"] == 1 and tp.queues.stats()[2]["ready"] == 0
    assert tp.status(handle.id).state == "scheduled"
    handle.wait(timeout=20)
    started = events("start")[0]["at"]
    assert 2.0 <= started - enqueued < 3.0, started - enqueued


def test_a_worker_killed_during_the_delay_loses_nothing(start_worker, redis_url):
    worker = start_worker()
    handle = slow.enqueue_with((0, "survivor"), countdown=3)
    time.sleep(1)
    worker.kill()
    start_worker()
    record = handle.wait(timeout=30)
    assert record.state == "succeeded"
    assert [e["tag"] for e in events("start")] == ["survivor"]
