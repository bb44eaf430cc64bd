"""Celery's result meta written with the final record: plain Celery clients (``AsyncResult.get()``) read
the outcome without a round trip of its own."""

from __future__ import annotations

from typing import Any

from celery import states
from celery.exceptions import TaskRevokedError

from taskplane.core.protocol import TaskState
from taskplane.middleware.base import Middleware, Run


class CeleryResults(Middleware):
    """Queues the SUCCESS meta of a task on the run's final batch (through the app's
    :class:`taskplane.celery.backend.ResultBackend`), which then skips its own write.

    Failures and retries keep Celery's own write: they are rare, and Celery builds their meta
    (exception, traceback) after the failure hooks ran.
    """

    def after_run(self, run: Run) -> None:
        """Queue the result meta of a task that succeeded (unless it ignores results), or REVOKED for one
        cancelled (Celery clients waiting on it see it end)."""
        if run.outcome not in (TaskState.SUCCEEDED, TaskState.CANCELLED):
            return
        task: Any = run.task
        backend = task.backend
        queue_result = getattr(backend, "queue_result", None)
        if queue_result is None:  # not taskplane's backend: Celery writes the result itself
            return
        request = task.request
        asked = getattr(request, "ignore_result", None)  # given with the call, else the task's (as Celery decides)
        if task.ignore_result if asked is None else asked:
            return
        if run.outcome == TaskState.CANCELLED:
            queue_result(run.batch.pipe, run.task_id, TaskRevokedError("cancelled"), request, states.REVOKED)
            return
        queue_result(run.batch.pipe, run.task_id, run.result, request)
