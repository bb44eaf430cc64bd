"""Cluster-wide rate limits: a GCRA in Redis shared by every worker on every host."""

from __future__ import annotations

from dataclasses import dataclass

from taskplane.core.policies import RateLimit
from taskplane.redis.storage import Storage


@dataclass(frozen=True)
class SlotRequest:
    """A start slot the start write reserves (``run_start.lua``): the limit's key, emission interval, burst."""

    key: str
    interval: float
    burst: int


class RateLimiter:
    """Hands out start slots at the limit's rate (``gcra_lib.lua``, reserved by the start write); callers
    wait for their slot outside a worker slot."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def request(self, queue: str, name: str, limit: RateLimit, bucket: str = "") -> SlotRequest:
        """The next start slot of ``limit`` for task ``name`` run from ``queue``, as the start write reserves it."""
        return SlotRequest(self._storage.keys.rate(queue, name, bucket), limit.interval, limit.burst)
