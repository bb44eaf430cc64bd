"""Delivery counts: how often one attempt of a task was handed to a worker (poison-message detection).

The count lives in the task's record (``delivery_attempt``, ``deliveries``), written by the worker's
fetch (``fetch.lua``) or, for a task it does not start, by the start script (``run_start.lua``) in the
one round trip before the task body.
"""

from __future__ import annotations

from taskplane.core.protocol import TERMINAL_STATES
from taskplane.redis.storage import Storage


class DeliveryCounter:
    """Corrects the delivery counts kept in task records."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def returned(self, task_ids: list[str]) -> None:
        """Take back the count of deliveries a graceful shutdown returns to their queue (of tasks not
        finished): only a delivery whose process died counts toward the poison cap."""
        if not task_ids:
            return
        batch = self._storage.batch()
        final = sorted(TERMINAL_STATES)
        for task_id in task_ids:
            batch.script("delivery_adjust", [self._storage.keys.record(task_id)], final)
        batch.execute()
