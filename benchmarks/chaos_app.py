"""The app ``make chaos`` runs: each task counts its own runs in Redis, so a run can count what was lost."""

from __future__ import annotations

import time

import redis

from taskplane import Retry, Taskplane

tp = Taskplane("chaos")
DONE = "{chaos}:done"  # set of task numbers that finished (one hash tag: one slot on a cluster)
RUNS = "{chaos}:runs"  # hash: task number -> times it finished


@tp.task(name="chaos.work", retry=Retry(max_retries=50, backoff=(0.5,), jitter=False, on=(redis.RedisError,)))
def work(number: int, seconds: float = 0.0) -> int:
    """Sleep ``seconds``, then note that task ``number`` finished (retried while Redis is unreachable)."""
    if seconds:
        time.sleep(seconds)
    pipe = tp.storage.client.pipeline()
    pipe.sadd(DONE, number).hincrby(RUNS, str(number), 1)
    pipe.execute()
    return number


@tp.task(name="chaos.unique_work", unique_for=600)
def unique_work(number: int) -> int:
    """``work`` under a uniqueness lock (the killed unique batch fault)."""
    return work(number)
