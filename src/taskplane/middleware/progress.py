"""Progress: ``progress(current, total, step, message)`` inside a task, in its record and Celery's PROGRESS state."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from taskplane.core.clock import compact_json
from taskplane.core.protocol import TaskState
from taskplane.middleware.base import Middleware, Run, current_run
from taskplane.stores.bundle import Stores

#: Seconds between progress writes; calls in between are coalesced.
PROGRESS_INTERVAL = 0.1


class ProgressReporter:
    """Coalesces one running attempt's progress reports into at most 10 writes a second."""

    def __init__(self, stores: Stores, run: Run) -> None:
        self._stores = stores
        self._run = run
        self._pending: dict[str, Any] | None = None
        self._meta: dict[str, Any] | None = None
        self._last_write = 0.0
        self._in_progress_state = False

    def report(self, values: dict[str, Any], force: bool = False, meta: dict[str, Any] | None = None) -> None:
        """Store progress, at most every PROGRESS_INTERVAL seconds unless forced; ``meta`` is the PROGRESS
        meta Celery clients read (default: the values without their ``progress_`` prefix)."""
        self._pending = values
        self._meta = meta
        now = time.monotonic()
        if force or now - self._last_write >= PROGRESS_INTERVAL:
            self.flush()

    def flush(self) -> None:
        """Write pending progress to the record and to Celery's PROGRESS state."""
        if self._pending is None:
            return
        values, self._pending = self._pending, None
        self._last_write = time.monotonic()
        state = None if self._in_progress_state else TaskState.PROGRESS
        self._in_progress_state = True
        run = self._run
        # Celery's PROGRESS meta first: whoever sees the record say progress finds Celery's view saying so too
        meta = self._meta if self._meta is not None else {key.removeprefix("progress_"): v for key, v in values.items()}
        run.task.backend.store_result(run.task_id, meta, "PROGRESS", request=run.task.request)
        self._stores.records.write(run.task_id, run.name, run.queue, state, **values)


class Progress(Middleware):
    """Gives each run a reporter and writes what is pending when the body ends."""

    def __init__(self, stores: Stores) -> None:
        self._stores = stores

    def before_run(self, run: Run) -> None:
        """Attach a reporter to the run."""
        run.report_progress = ProgressReporter(self._stores, run).report

    def after_run(self, run: Run) -> None:
        """Write the last progress before the final record."""
        self._finish(run)

    def on_failure(self, run: Run, exc: Exception) -> None:
        """Write the last progress before the failure is recorded."""
        self._finish(run)

    @staticmethod
    def _finish(run: Run) -> None:
        reporter = getattr(run.report_progress, "__self__", None)
        if isinstance(reporter, ProgressReporter):
            reporter.flush()


#: Keys of a Celery ``update_state(state="PROGRESS", meta=...)`` meta read into the record's progress fields.
META_FIELDS = {
    "current": "progress_current",
    "total": "progress_total",
    "step": "progress_step",
    "current_step": "progress_step",
    "message": "progress_message",
}


def progress_from_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The record's progress fields for a Celery PROGRESS meta: ``current``/``total``, else ``progress`` as
    a percentage (of 100); ``step``/``current_step``; ``message``; the other keys as JSON in
    ``progress_meta``."""
    values: dict[str, Any] = {"progress_updated_ms": int(time.time() * 1000)}
    rest: dict[str, Any] = {}
    for key, value in meta.items():
        field = META_FIELDS.get(str(key))
        if field is not None and value is not None:
            values[field] = value if field in ("progress_current", "progress_total") else str(value)
        elif key != "progress":
            rest[str(key)] = value
    if "progress_current" not in values and isinstance(meta.get("progress"), (int, float)):
        values["progress_current"], values["progress_total"] = meta["progress"], 100
    if rest:
        values["progress_meta"] = compact_json(rest)[0]
    return values


def progress(current: float, total: float | None = None, step: str | None = None, message: str | None = None) -> None:
    """Report progress of the running task (cheap: writes are coalesced to 10 per second).

    Raises:
        RuntimeError: called outside a running taskplane task.
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
    run = current_run()
    if run.report_progress is None:
        raise RuntimeError("progress() needs the progress middleware")
    run.report_progress(values, total is not None and current >= total)
