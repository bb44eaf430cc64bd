"""Cancellation: a cancelled task never starts; a running one sees ``is_cancelled()`` and may be terminated."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import signals
from celery.worker import state

from taskplane.core.clock import now_ms
from taskplane.core.protocol import DeadReason, TaskState
from taskplane.middleware.base import Middleware, Run, TaskCancelled, WorkerContext, current_run
from taskplane.middleware.failure import FailurePath
from taskplane.stores.bundle import Stores

log = logging.getLogger("taskplane.worker")

#: How often a running task's ``is_cancelled()`` asks Redis, at most.
CHECK_INTERVAL = 0.5
#: How often a worker looks for cancelled tasks whose grace period is over.
TERMINATE_INTERVAL = 1.0


class Cancellation(Middleware):
    """Honours the cancellation markers in Redis, on every worker and across restarts."""

    def __init__(self, stores: Stores, failure: FailurePath) -> None:
        self._stores = stores
        self._failure = failure
        self._revoked_handler = self._revoked  # kept: a bound method made anew would not disconnect

    def after_start(self, run: Run) -> None:
        """Stop a task cancelled before it started (the start write found it so); give a starting one its
        ``is_cancelled()``."""
        if run.verdict == "cancelled":
            raise TaskCancelled(run.task_id)
        checked_at = 0.0
        cancelled = False

        def check() -> bool:
            nonlocal checked_at, cancelled
            now = time.monotonic()
            if not cancelled and now - checked_at >= CHECK_INTERVAL:
                checked_at = now
                cancelled = self._stores.cancellations.is_cancelled(run.queue, run.task_id)
                run.cancel_seen = cancelled
            return cancelled

        run.check_cancelled = check

    def on_worker_start(self, worker: WorkerContext) -> None:
        """Terminate running tasks whose cancellation grace period has run out; record the tasks Celery's own
        revoke ended (a broadcast ``revoke``, also with ``terminate=True`` or from a plain Celery client, and
        an ``expires`` that passed: also dead-lettered, reason ``expired``, to be seen and requeued)."""
        worker.add_periodic("cancel-watch", TERMINATE_INTERVAL, lambda: self._terminate_due(worker))
        signals.task_revoked.connect(self._revoked_handler, weak=False)

    def on_worker_stop(self, worker: WorkerContext) -> None:
        """Stop listening for Celery's revokes."""
        signals.task_revoked.disconnect(self._revoked_handler)

    def _revoked(
        self, sender: Any = None, request: Any = None, terminated: bool = False, expired: bool = False, **_: Any
    ) -> None:
        if request is None:
            return
        reason = "expired" if expired else "terminated" if terminated else "revoked"
        name = str(getattr(sender, "name", None) or getattr(request, "task", None) or "")
        queue = str((getattr(request, "delivery_info", None) or {}).get("routing_key") or "")
        try:
            if expired:
                self._bury_expired(request, name, queue)
            else:
                self._stores.records.write(
                    str(request.id), name, queue, TaskState.CANCELLED, finished_ms=now_ms(), reason=reason
                )
        except Exception as exc:  # the signal must not break Celery's handling of the revoke
            log.warning("could not record the revoked task %s: %s", request.id, exc)

    def _bury_expired(self, request: Any, name: str, queue: str) -> None:
        """A task whose ``expires`` passed before it ran (Celery's worker refuses it on receipt, before any
        process runs it): a dead letter with its arguments (a requeue runs it, without the expiry) and a
        record that says cancelled, reason ``expired`` (Celery's own state is REVOKED)."""
        self._failure.bury(
            DeadReason.EXPIRED,
            task_id=str(request.id),
            name=name,
            queue=queue,
            attempts=0,
            worker=str(getattr(request, "hostname", "") or ""),
            args=getattr(request, "args", None) or (),
            kwargs=getattr(request, "kwargs", None) or {},
            exception_type="TaskExpired",
            message=f"its expiry ({getattr(request, 'expires', None)}) passed before a worker ran it",
            record_state=TaskState.CANCELLED,
        )
        # Celery put the id in its worker's revoked set: a requeue of the letter (same id, no expiry) would be
        # refused as revoked. A copy that is still expired is refused again by its own expiry.
        state.revoked.discard(request.id)

    def _terminate_due(self, worker: WorkerContext) -> None:
        active = {request.id: request for request in tuple(state.active_requests)}
        if not active:
            return
        queues = {task_id: _queue_of(request) for task_id, request in active.items()}
        for task_id in self._stores.cancellations.due_for_termination([(q, task_id) for task_id, q in queues.items()]):
            request = active[task_id]
            log.warning("terminating cancelled task %s[%s] after its grace period", request.name, task_id)
            request.terminate(worker.pool(), signal="SIGTERM")
            queue = queues[task_id]
            self._stores.records.write(
                task_id, request.name, queue, TaskState.CANCELLED, finished_ms=now_ms(), reason="terminated"
            )


def is_cancelled() -> bool:
    """True once cancellation of the running task was requested (checked at most twice a second).

    Raises:
        RuntimeError: called outside a running taskplane task, or with no cancellation middleware.
    """
    run = current_run()
    if run.check_cancelled is None:
        raise RuntimeError("is_cancelled() needs the cancellation middleware")
    return run.check_cancelled()


def _queue_of(request: Any) -> str:
    """The queue a Celery request was delivered from."""
    return str((request.delivery_info or {}).get("routing_key") or getattr(request.task, "queue", ""))
