"""Cancellation markers stored in Redis, honoured by every worker and across restarts."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from taskplane.redis.storage import Storage


@dataclass(frozen=True)
class CancelRequest:
    """A stored request to cancel a task; ``terminate_at`` is when a running task is killed (None: never)."""

    requested_at: float
    terminate_at: float | None


class CancellationStore:
    """Writes and reads cancellation markers (kept as long as task records)."""

    def __init__(self, storage: Storage, retention_seconds: int) -> None:
        self._storage = storage
        self._retention = retention_seconds

    def request(self, queues: list[str], task_id: str, terminate_after: float | None = None) -> CancelRequest:
        """Mark ``task_id`` cancelled, under each of ``queues`` (its queue, or every queue for an id not
        recorded yet: the marker is read by the task's start, in its queue's slot); a running task is
        terminated ``terminate_after`` seconds later if given."""
        now = time.time()
        request = CancelRequest(now, None if terminate_after is None else now + terminate_after)
        payload = json.dumps({"requested_at": request.requested_at, "terminate_at": request.terminate_at})
        pipe = self._storage.client.pipeline(transaction=False)
        for queue in queues:
            pipe.set(self._storage.keys.cancel(queue, task_id), payload, ex=self._retention)
        pipe.execute()
        return request

    def is_cancelled(self, queue: str, task_id: str) -> bool:
        """True if a cancellation was requested for ``task_id`` of ``queue``."""
        return bool(self._storage.client.exists(self._storage.keys.cancel(queue, task_id)))

    def due_for_termination(self, tasks: list[tuple[str, str]]) -> list[str]:
        """The ids of those of ``tasks`` (queue, id) whose grace period has run out."""
        if not tasks:
            return []
        pipe = self._storage.client.pipeline(transaction=False)  # (one GET per key: their queues' slots differ)
        for queue, task_id in tasks:
            pipe.get(self._storage.keys.cancel(queue, task_id))
        values = pipe.execute()
        now = time.time()
        due = []
        for (_, task_id), value in zip(tasks, values, strict=True):
            request = _decode(value)
            if request is not None and request.terminate_at is not None and request.terminate_at <= now:
                due.append(task_id)
        return due


def _decode(value: str | None) -> CancelRequest | None:
    if value is None:
        return None
    data = json.loads(value)
    return CancelRequest(float(data["requested_at"]), data.get("terminate_at"))
