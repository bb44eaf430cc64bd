"""Tasks the integration tests run in real worker processes (configured from TASKPLANE_* env)."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded

from taskplane import RateLimit, Retry, Taskplane, is_cancelled, progress

tp = Taskplane("core-tests", queues={"reports": "low"})

EVENTS = "test:events"


def note(kind: str, **fields: Any) -> None:
    """Append an event (with the wall time and worker pid) to a Redis list the test reads."""
    tp.storage.client.rpush(EVENTS, json.dumps({"kind": kind, "at": time.time(), "pid": os.getpid(), **fields}))


def events(kind: str | None = None) -> list[dict[str, Any]]:
    """Events noted so far, oldest first."""
    found = [json.loads(item) for item in tp.storage.client.lrange(EVENTS, 0, -1)]
    return [event for event in found if kind is None or event["kind"] == kind]


@tp.task(name="t.add")
def add(a: int, b: int) -> int:
    return a + b


@tp.task(name="t.mark")
def mark(tag: str) -> str:
    note("mark", tag=tag)
    return tag


@tp.task(name="t.mark_critical", queue="critical")
def mark_critical(tag: str) -> str:
    note("mark", tag=tag)
    return tag


@tp.task(name="t.fails_until_fixed", retry=Retry(max_retries=2, backoff=(0.5, 1.0), jitter=False))
def fails_until_fixed(key: str) -> str:
    note("attempt", key=key)
    if tp.storage.client.get(key) != "fixed":
        raise RuntimeError(f"{key} is broken")
    return "repaired"


@tp.task(name="t.not_retryable", retry=Retry(max_retries=5, backoff=(0.2,), never_on=(KeyError,)))
def not_retryable() -> None:
    note("attempt")
    raise KeyError("missing")


@tp.task(name="t.limited", rate_limit=RateLimit("10/s"))
def limited(index: int) -> int:
    note("limited", index=index)
    return index


@tp.task(name="t.roomy", rate_limit=RateLimit("100000/s"))
def roomy(index: int) -> int:
    """Rate-limited, with room for every call: each reserves a slot and none waits."""
    return index


@tp.task(name="t.unique", unique_for=60)
def unique(item: str) -> str:
    return item


@tp.task(name="t.slow")
def slow(seconds: float, tag: str) -> str:
    note("start", tag=tag)
    time.sleep(seconds)
    note("end", tag=tag)
    return tag


@tp.task(name="t.suicide")
def suicide() -> None:
    note("suicide")
    os.kill(os.getpid(), signal.SIGKILL)


@tp.task(name="t.cooperative")
def cooperative(limit: float) -> str:
    note("start", tag="cooperative")
    deadline = time.time() + limit
    while time.time() < deadline:
        if is_cancelled():
            note("noticed", tag="cooperative")
            return "stopped early"
        time.sleep(0.05)
    return "ran to the end"


@tp.task(name="t.stubborn")
def stubborn(limit: float) -> str:
    note("start", tag="stubborn")
    time.sleep(limit)
    note("end", tag="stubborn")
    return "done"


@tp.task(name="t.steps")
def steps(count: int) -> int:
    for index in range(1, count + 1):
        progress(index, count, step=f"step {index}", message="working")
    return count


@tp.task(name="t.hard_limit", time_limit=1.5, soft_time_limit=0.5)
def hard_limit() -> None:
    try:
        time.sleep(10)
    except SoftTimeLimitExceeded:
        time.sleep(10)  # ignores the soft limit: only the hard one can stop it


@tp.task(name="t.paced")
def paced(count: int, pause: float) -> int:
    for index in range(1, count + 1):
        time.sleep(pause)
        progress(index, count, step=f"step {index}")
    return count


@tp.task(name="t.resilient", retry=Retry(max_retries=20, backoff=(0.5,), jitter=False, on=(redis.RedisError,)))
def resilient(seconds: float, tag: str) -> str:
    """Like t.slow, retrying while Redis is unreachable (its events are written to Redis)."""
    note("start", tag=tag)
    time.sleep(seconds)
    note("end", tag=tag)
    return tag
