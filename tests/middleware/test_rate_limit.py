"""The cluster-wide rate limit holds across worker processes."""

from __future__ import annotations

from tests.apps.core_app import events, limited
from tests.workers import StartWorker, wait_for


def test_a_10_per_second_limit_holds_across_two_worker_processes(start_worker: StartWorker, redis_url: str) -> None:
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
