"""Tasks by id: their records, results and cancellation."""

from __future__ import annotations

from typing import Any

from celery import Celery

from taskplane.core.clock import now_ms
from taskplane.core.errors import NotFinishedError, NotFoundError, TaskplaneError
from taskplane.core.protocol import TaskState
from taskplane.core.transitions import WAITING
from taskplane.stores.bundle import Stores
from taskplane.stores.records import TaskRecord


class TaskFailedError(TaskplaneError):
    """The task ended without a result (dead-lettered or cancelled)."""


class Tasks:
    """Reads task records and results, and cancels tasks (what ``tp.status/result/cancel/tasks`` call)."""

    def __init__(self, stores: Stores, celery: Celery) -> None:
        self._stores = stores
        self._celery = celery

    def get(self, task_id: str) -> TaskRecord | None:
        """The task's record, or None if no such task exists."""
        return self._stores.records.get(task_id)

    def cancel_unknown(self, task_id: str) -> None:
        """Cancel a task id taskplane has no record of (Celery's ``revoke`` of any id): a message with that id
        that no taskplane publish recorded (a plain Celery client's) never runs. One that a taskplane enqueue
        sends later does: the start reads the marker only for a task without a record (not fixed yet)."""
        self._stores.cancellations.request(self._stores.records.queues(), task_id)

    def result_of(self, record: TaskRecord, timeout: float = 5.0) -> Any:
        """The result of a finished task's record (from the result backend when the record holds only part).

        Raises:
            TaskFailedError: it ended dead-lettered or cancelled.
        """
        if record.state != TaskState.SUCCEEDED:
            reason = record.fields.get("error_message") or record.fields.get("reason") or ""
            raise TaskFailedError(f"task {record.id} ended {record.state}: {reason}".rstrip(": "))
        if record.fields.get("result_truncated") == "1":
            return self._celery.AsyncResult(record.id).get(timeout=timeout)
        return record.result()

    def result(self, task_id: str) -> Any:
        """The result of a finished task, without waiting.

        Raises:
            NotFoundError: no such task.
            NotFinishedError: it has not finished yet.
            TaskFailedError: it ended dead-lettered or cancelled.
        """
        record = self.get(task_id)
        if record is None:
            raise NotFoundError(f"task {task_id} not found")
        if not record.done:
            raise NotFinishedError(f"task {task_id} has no result yet: it is {record.state}")
        return self.result_of(record)

    def cancel(self, task_id: str, terminate_after: float | None = None) -> str:
        """Cancel a task; returns its state. A queued or delayed one never runs; a running one sees
        ``is_cancelled()`` and is terminated ``terminate_after`` seconds later if given.

        Raises:
            NotFoundError: no such task.
        """
        records = self._stores.records
        record = records.get(task_id)
        if record is None:
            raise NotFoundError(f"task {task_id} not found")
        if record.done:
            return record.state
        # The record first: a worker's start script reads the record (not the marker) to refuse to start it.
        if record.state in WAITING:
            records.write(task_id, record.name, record.queue, TaskState.CANCELLED, finished_ms=now_ms())
            self._stores.cancellations.request([record.queue], task_id, terminate_after)
            # Celery's view says so too (AsyncResult.state, a waiting get()): no worker will write it.
            self._celery.backend.mark_as_revoked(task_id, "cancelled")
            return TaskState.CANCELLED
        records.write(task_id, record.name, record.queue, None, cancel_requested_ms=now_ms())
        self._stores.cancellations.request([record.queue], task_id, terminate_after)
        return record.state
