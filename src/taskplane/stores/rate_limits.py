"""Cluster-wide rate limits: a GCRA in Redis shared by every worker on every host."""

from __future__ import annotations

from taskplane.core.policies import RateLimit
from taskplane.redis.storage import Storage


class RateLimiter:
    """Hands out start slots at the limit's rate; callers wait for their slot outside a worker slot."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def reserve(self, name: str, limit: RateLimit, bucket: str = "") -> float:
        """Reserve the next start slot; returns seconds until it (0 means start now)."""
        key = self._storage.keys.rate(name, bucket)
        wait_ms = self._storage.scripts.run("gcra_reserve", keys=[key], args=[repr(limit.interval), limit.burst])
        return int(wait_ms) / 1000.0
