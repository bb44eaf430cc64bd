"""The handle ``enqueue`` returns: the task's id and ways to follow it."""

from __future__ import annotations

import time
from typing import Any

from taskplane.client.tasks import TaskFailedError, Tasks
from taskplane.core.clock import compact_json
from taskplane.core.errors import NotFoundError
from taskplane.core.protocol import TaskState
from taskplane.stores.records import TaskRecord

__all__ = ["TaskFailedError", "TaskHandle"]


class TaskHandle:
    """A queued task: ``.id``, plus its record, waiting and cancellation."""

    def __init__(
        self,
        tasks: Tasks,
        task_id: str,
        existing: bool = False,
        inline_result: Any = None,
        name: str = "",
        queue: str = "",
    ) -> None:
        self._tasks = tasks
        self.id = task_id
        #: True when ``unique_for`` returned an already queued or running task instead of a new one.
        self.existing = existing
        self._inline_result = inline_result
        self._name, self._queue = name, queue

    def _inline_record(self) -> TaskRecord:
        """The record of a task the inline fallback ran in this process (Redis holds none)."""
        inline = self._inline_result
        if inline.successful():
            fields: dict[str, Any] = {"result": compact_json(inline.result)[0], "inline": "1"}
            return TaskRecord(self.id, self._name, self._queue, TaskState.SUCCEEDED, fields)
        error = inline.result
        fields = {"reason": "failed", "error_type": type(error).__name__, "error_message": str(error), "inline": "1"}
        return TaskRecord(self.id, self._name, self._queue, TaskState.DEAD, fields)

    def __repr__(self) -> str:
        return f"TaskHandle({self.id!r})"

    def record(self) -> TaskRecord:
        """The task's record.

        Raises:
            NotFoundError: no record (never existed or expired).
        """
        if self._inline_result is not None:
            return self._inline_record()
        record = self._tasks.get(self.id)
        if record is None:
            raise NotFoundError(f"task {self.id} not found")
        return record

    @property
    def state(self) -> str:
        """The current state."""
        return self.record().state

    def wait(self, timeout: float = 60.0, poll: float = 0.05) -> TaskRecord:
        """Block until the task reaches a terminal state; return its record.

        Raises:
            TimeoutError: not done within ``timeout`` seconds.
        """
        if self._inline_result is not None:
            return self._inline_record()
        deadline = time.monotonic() + timeout
        while True:
            record = self._tasks.get(self.id)
            if record is not None and record.done:
                return record
            if time.monotonic() >= deadline:
                state = record.state if record else "unknown"
                raise TimeoutError(f"task {self.id} not done after {timeout:g}s (state {state})")
            time.sleep(poll)

    def result(self, timeout: float = 60.0) -> Any:
        """Wait for the task and return its result.

        Raises:
            TaskFailedError: it was dead-lettered or cancelled.
            TimeoutError: not done in time.
        """
        if self._inline_result is not None:
            return self._inline_result.get(propagate=True)
        return self._tasks.result_of(self.wait(timeout), timeout)

    def cancel(self, terminate_after: float | None = None) -> None:
        """Cancel this task (see :meth:`Taskplane.cancel`)."""
        self._tasks.cancel(self.id, terminate_after=terminate_after)
