"""Delivery counters: how often one attempt of a task was handed to a worker (poison-message detection)."""

from __future__ import annotations

from taskplane.redis.storage import Storage


class DeliveryCounter:
    """One counter per task attempt, kept as long as task records."""

    def __init__(self, storage: Storage, retention_seconds: int) -> None:
        self._storage = storage
        self._retention = retention_seconds

    def count(self, task_id: str, attempt: int) -> int:
        """Count one more delivery of ``task_id``'s attempt ``attempt``; returns the deliveries so far."""
        key = self._storage.keys.deliveries(task_id, attempt)
        pipe = self._storage.client.pipeline()
        pipe.incr(key)
        pipe.expire(key, self._retention)
        count, _ = pipe.execute()
        return int(count)

    def returned(self, deliveries: list[tuple[str, int]]) -> None:
        """Take back the count of deliveries a graceful shutdown returns to their queue: only a
        delivery whose process died counts toward the poison cap. ``deliveries``: (task id, attempt)."""
        if not deliveries:
            return
        pipe = self._storage.client.pipeline(transaction=False)
        for task_id, attempt in deliveries:
            pipe.decr(self._storage.keys.deliveries(task_id, attempt))
        pipe.execute()

    def forget(self, task_id: str, attempts: int) -> None:
        """Drop the counters of attempts ``0..attempts`` (a requeued task starts from nothing)."""
        keys = self._storage.keys
        self._storage.client.delete(*(keys.deliveries(task_id, attempt) for attempt in range(attempts + 1)))
