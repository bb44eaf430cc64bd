"""The broker-side delayed store survives a worker killed during the delay."""

from __future__ import annotations

import time

from tests.apps.core_app import events, slow
from tests.workers import StartWorker


def test_a_worker_killed_during_the_delay_loses_nothing(start_worker: StartWorker, redis_url: str) -> None:
    worker = start_worker()
    handle = slow.enqueue_with((0, "survivor"), countdown=3)
    time.sleep(1)
    worker.kill()
    start_worker()
    record = handle.wait(timeout=30)
    assert record.state == "succeeded"
    assert [e["tag"] for e in events("start")] == ["survivor"]
