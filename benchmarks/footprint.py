"""Memory figures of ``make bench``: Redis bytes per retained task record, worker RSS with delayed tasks."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.load import WARM_UP
from benchmarks.systems import SYSTEMS, Worker, drain, enqueue

RECORD_TASKS = 10_000
#: How long a worker gets to take in delayed tasks after they were all enqueued (plain Celery holds
#: every countdown task in worker memory, and takes a while to read 100,000 of them).
SETTLE_SECONDS = 60.0


def retained_bytes(name: str, client: Any, env: dict[str, str]) -> float:
    """Redis memory per finished task that the system keeps (taskplane's record, Celery's result)."""
    client.flushall()
    time.sleep(0.5)
    before = int(client.info("memory")["used_memory"])
    enqueue(name, "single", RECORD_TASKS, env)
    drain(SYSTEMS[name], 2, client, env)
    time.sleep(0.5)
    after = int(client.info("memory")["used_memory"])
    return (after - before) / (RECORD_TASKS + WARM_UP)


def _pending(name: str, client: Any) -> int:
    """Delayed messages still in the broker's lists, not yet taken into a worker's memory."""
    if name == "celery":
        return int(client.llen("celery"))
    if name == "dramatiq":
        return int(client.llen("dramatiq:default.DQ"))
    return 0


def worker_rss(name: str, client: Any, env: dict[str, str], delayed: int) -> dict[str, float]:
    """Worker RSS (MiB, every process) before and after ``delayed`` tasks with a one-hour countdown."""
    client.flushall()
    worker = Worker(SYSTEMS[name], 2, env)
    try:
        time.sleep(8)  # started and idle
        before = worker.rss_bytes()
        enqueue(name, "delayed", delayed - WARM_UP, env)
        deadline = time.monotonic() + SETTLE_SECONDS
        while _pending(name, client) and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(3)
        after = worker.rss_bytes()
        return {
            "before_mib": before / 2**20,
            "after_mib": after / 2**20,
            "growth_mib": (after - before) / 2**20,
            "not_yet_taken": _pending(name, client),
        }
    finally:
        worker.stop()


def measure(client: Any, env: dict[str, str], delayed: int) -> dict[str, Any]:
    """Bytes per retained record (taskplane, plain Celery's result) and worker RSS with delayed tasks."""
    return {
        "record_bytes": {name: retained_bytes(name, client, env) for name in ("taskplane", "celery")},
        "delayed_tasks": delayed,
        "worker_rss": {name: worker_rss(name, client, env, delayed) for name in ("taskplane", "celery", "dramatiq")},
    }
