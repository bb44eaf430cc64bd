"""What a running task can ask about itself: progress reporting and cancellation."""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskplane.celery.task import TaskplaneTask

PROGRESS_INTERVAL = 0.1  # seconds between progress writes; calls in between are coalesced


@dataclass
class Execution:
    """One running attempt of a task, as seen from inside it."""

    task: TaskplaneTask
    task_id: str
    name: str
    queue: str
    pending: dict[str, Any] | None = None
    last_write: float = 0.0
    in_progress_state: bool = False
    cancel_checked_at: float = field(default=0.0)
    cancelled: bool = False

    def report(self, values: dict[str, Any], force: bool = False) -> None:
        """Store progress, at most every PROGRESS_INTERVAL seconds unless forced."""
        self.pending = values
        now = time.monotonic()
        if force or now - self.last_write >= PROGRESS_INTERVAL:
            self.flush()

    def flush(self) -> None:
        """Write pending progress to the record and to Celery's PROGRESS state."""
        if self.pending is None:
            return
        values, self.pending = self.pending, None
        self.last_write = time.monotonic()
        state = None if self.in_progress_state else "progress"
        self.in_progress_state = True
        self.task.taskplane.records.write(self.task_id, self.name, self.queue, state, **values)
        meta = {key.removeprefix("progress_"): value for key, value in values.items()}
        self.task.update_state(task_id=self.task_id, state="PROGRESS", meta=meta)


_current: ContextVar[Execution | None] = ContextVar("taskplane_execution", default=None)


def current_execution() -> Execution:
    """The attempt running in this context.

    Raises:
        RuntimeError: called outside a taskplane task.
    """
    execution = _current.get()
    if execution is None:
        raise RuntimeError("progress()/is_cancelled() can only be called inside a running taskplane task")
    return execution


def progress(current: float, total: float | None = None, step: str | None = None, message: str | None = None) -> None:
    """Report progress of the running task (cheap: writes are coalesced to 10 per second).

    Raises:
        RuntimeError: called outside a taskplane task.
        ValueError: ``current`` is negative or above ``total``.
    """
    if current < 0 or (total is not None and current > total):
        raise ValueError(f"progress current={current} must be within 0..total ({total})")
    values: dict[str, Any] = {"progress_current": current, "progress_updated_ms": int(time.time() * 1000)}
    if total is not None:
        values["progress_total"] = total
    if step is not None:
        values["progress_step"] = step
    if message is not None:
        values["progress_message"] = message
    execution = current_execution()
    execution.report(values, force=total is not None and current >= total)


def is_cancelled() -> bool:
    """True once cancellation of the running task was requested (checked at most twice a second)."""
    execution = current_execution()
    now = time.monotonic()
    if not execution.cancelled and now - execution.cancel_checked_at >= 0.5:
        execution.cancel_checked_at = now
        execution.cancelled = execution.task.taskplane.cancellations.is_cancelled(execution.task_id)
    return execution.cancelled
