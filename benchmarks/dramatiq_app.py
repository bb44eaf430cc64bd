"""Dramatiq on the same server: its Redis broker and a no-op actor (``dramatiq benchmarks.dramatiq_app``)."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="default")
def noop(index: int, payload: str = "") -> int:
    """Does nothing."""
    return index
