"""Worker heartbeats in Redis: who is alive, what it consumes, how busy it is."""

from __future__ import annotations

import time
from typing import Any

from taskplane.redis.storage import Storage

HEARTBEAT_INTERVAL = 5.0
ALIVE_WINDOW = 3 * HEARTBEAT_INTERVAL


class WorkerStore:
    """Heartbeats of live workers: one hash per worker and an index scored by last heartbeat."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def beat(self, hostname: str, fields: dict[str, Any]) -> None:
        """Record that ``hostname`` is alive now, with its counters."""
        now = time.time()
        key = self._storage.keys.worker(hostname)
        pipe = self._storage.client.pipeline()
        pipe.hset(key, mapping={**fields, "hostname": hostname, "last_heartbeat": now})
        pipe.expire(key, int(ALIVE_WINDOW * 4))
        pipe.zadd(self._storage.keys.workers(), {hostname: now})
        pipe.zremrangebyscore(self._storage.keys.workers(), "-inf", now - 24 * 3600)
        pipe.execute()

    def forget(self, hostname: str) -> None:
        """Remove a worker that shut down cleanly."""
        pipe = self._storage.client.pipeline()
        pipe.delete(self._storage.keys.worker(hostname))
        pipe.zrem(self._storage.keys.workers(), hostname)
        pipe.execute()

    def known(self) -> list[tuple[str, bool, int]]:
        """Every worker seen in the last day that did not stop cleanly: (hostname, alive, active tasks)."""
        now = time.time()
        index = self._storage.keys.workers()
        entries = self._storage.client.zrangebyscore(index, now - 24 * 3600, "+inf", withscores=True)
        pipe = self._storage.client.pipeline(transaction=False)
        for name, _ in entries:
            pipe.hget(self._storage.keys.worker(name), "active")
        workers = []
        for (name, seen), active in zip(entries, pipe.execute(), strict=True):
            alive = seen >= now - ALIVE_WINDOW
            workers.append((str(name), alive, int(active or 0) if alive else 0))
        return workers

    def live(self) -> list[dict[str, Any]]:
        """Workers that sent a heartbeat within the alive window, most recent first."""
        now = time.time()
        names = self._storage.client.zrevrangebyscore(self._storage.keys.workers(), "+inf", now - ALIVE_WINDOW)
        pipe = self._storage.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self._storage.keys.worker(name))
        workers = []
        for data in pipe.execute():
            if not data:
                continue
            workers.append(
                {
                    "hostname": data.get("hostname", ""),
                    "pid": int(data.get("pid", 0)),
                    "queues": [q for q in data.get("queues", "").split(",") if q],
                    "concurrency": int(data.get("concurrency", 0)),
                    "active": int(data.get("active", 0)),
                    "processed": int(data.get("processed", 0)),
                    "started_at": float(data.get("started_at", 0)),
                    "last_heartbeat": float(data.get("last_heartbeat", 0)),
                }
            )
        return workers
