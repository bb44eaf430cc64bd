"""``tp.queues``: what waits in each queue (ready, delayed, dead), highest tier first."""

from __future__ import annotations

import json
from typing import Any

from celery import Celery

from taskplane.core.clock import now_ms
from taskplane.core.protocol import TERMINAL_STATES, TaskState
from taskplane.core.topology import Topology
from taskplane.stores.bundle import Stores


class Queues:
    """The queues of one app and their depths."""

    def __init__(self, stores: Stores, topology: Topology, celery: Celery) -> None:
        self._stores = stores
        self._topology = topology
        self._celery = celery

    def names(self) -> list[str]:
        """Declared queue names, highest tier first."""
        return self._topology.names()

    def lengths(self, names: list[str] | None = None) -> dict[str, int]:
        """Messages ready in each queue (every priority sub-list counted)."""
        return self._stores.queues.lengths(names if names is not None else self.names())

    def stats(self) -> list[dict[str, Any]]:
        """Ready, delayed, running (taken by a worker, not yet acknowledged) and dead counts per queue,
        highest tier first."""
        names = self.names()
        ready = self.lengths(names)
        running = self._stores.queues.in_flight(names)
        delayed = self._stores.delayed.counts(names)
        dead = self._stores.dead_letters.counts()
        return [
            {
                "queue": spec.name,
                "tier": spec.tier,
                "weight": spec.weight,
                "ready": ready[spec.name],
                "delayed": delayed.get(spec.name, 0),
                "running": running.get(spec.name, 0),
                "dead": dead.get(spec.name, 0),
            }
            for spec in self._topology.ordered()
        ]

    def purge(self, name: str) -> int:
        """Delete every message waiting in queue ``name`` (ready and delayed) and mark their records
        ``cancelled`` (Celery's result meta says REVOKED); returns how many. Running tasks are not touched.
        Unlike ``celery purge``, no record is left saying ``queued``.

        Raises:
            ConfigurationError: an unknown queue.
        """
        self._topology.get(name)
        queues, records = self._stores.queues, self._stores.records
        purged = 0
        while True:
            raw = queues.take_for_purge(name)
            if not raw:
                return purged
            found = _ids_and_names(raw)
            storage = self._stores.storage
            reads = storage.client.pipeline(transaction=False)
            for task_id, _ in found:
                reads.hget(storage.keys.record(name, task_id), "state")
            batch = storage.batch()
            cancelled = []
            for (task_id, task_name), state in zip(found, reads.execute(), strict=True):
                if (state.decode() if isinstance(state, bytes) else state) not in TERMINAL_STATES:
                    records.write(task_id, task_name, name, TaskState.CANCELLED, batch=batch, finished_ms=now_ms())
                    cancelled.append(task_id)
            batch.execute()
            backend: Any = self._celery.backend  # taskplane's ResultBackend (celery/backend.py)
            backend.revoke_many(cancelled, "purged")
            queues.forget_purged(name, len(raw))
            purged += len(raw)


def _ids_and_names(raw: list[str]) -> list[tuple[str, str]]:
    """The (task id, task name) of each kombu message in ``raw`` that names one."""
    found = []
    for item in raw:
        try:
            headers = json.loads(item).get("headers") or {}
        except (ValueError, AttributeError):
            continue
        if isinstance(headers, dict) and headers.get("id") and headers.get("task"):
            found.append((str(headers["id"]), str(headers["task"])))
    return found
