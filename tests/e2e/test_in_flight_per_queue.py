"""Deliveries in flight are kept per queue (issue 26): each queue's hash and lease index hold only what was
taken from it, and a delivery whose worker died goes back to the queue it was taken from, ringing its bell."""

from __future__ import annotations

import json

from tests.apps.core_app import events, tp
from tests.workers import StartWorker, wait_for


def in_flight(queue: str) -> list[str]:
    """The task ids of the deliveries in flight from ``queue``."""
    keys = tp.storage.keys
    return sorted(json.loads(entry)[0]["headers"]["id"] for entry in tp.storage.client.hvals(keys.unacked(queue)))


def test_each_queue_holds_its_own_deliveries_and_a_dead_workers_return_to_them(
    start_worker: StartWorker, redis_url: str
) -> None:
    keys = tp.storage.keys
    lease = {"TASKPLANE_LEASE_TIMEOUT": "4"}
    doomed = start_worker(queues="high,normal,low", concurrency=3, env=lease)
    tasks = {queue: tp.enqueue("t.slow", [6, queue], queue=queue) for queue in ("high", "normal", "low")}
    wait_for(lambda: len(events("start")) == 3, 20, "all three started")
    # Then each queue's in-flight hash and lease index hold its own task's delivery, and nothing else
    for queue, handle in tasks.items():
        assert in_flight(queue) == [handle.id]
        assert tp.storage.client.zcard(keys.unacked_index(queue)) == 1
    stats = {row["queue"]: row["running"] for row in tp.queues.stats()}
    assert stats == {"critical": 0, "high": 1, "normal": 1, "low": 1, "reports": 0}
    expected = {handle.id: queue for queue, handle in tasks.items()}
    assert {record.id: record.queue for record in tp.records.find(state="started").records} == expected
    assert {record.id: record.queue for record in tp.records.find().records if record.state == "started"} == expected
    # When the worker dies and another, consuming only "low", sweeps once the leases ran out
    doomed.kill()
    for queue in tasks:
        tp.storage.client.delete(keys.bell(queue))
    start_worker(queues="low", env=lease)
    wait_for(lambda: tp.storage.client.llen(keys.queue("low")) == 0 and in_flight("low"), 30, "low taken again")
    # Then only its own queue's delivery came back (to its queue, ringing nothing else); the others stay in
    # flight until a worker of their queues sweeps them
    assert in_flight("high") == [tasks["high"].id] and in_flight("normal") == [tasks["normal"].id]
    assert tp.storage.client.llen(keys.bell("high")) == 0
    start_worker(queues="high,normal", concurrency=2, env=lease)
    for handle in tasks.values():
        assert handle.wait(timeout=60).state == "succeeded"
