"""The Celery Task base every taskplane task uses: policies, records, progress, dead letters, limits."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import celery
from celery.exceptions import Ignore, Reject
from celery.exceptions import Retry as CeleryRetry

from taskplane.middleware.execution import Execution, _current
from taskplane.stores.dead_letters import DeadLetter
from taskplane.observability.logging import TaskLogContext, enter_task, leave_task
from taskplane.core.policies import RateLimit, Retry
from taskplane.stores.records import compact_json, now_ms
from taskplane.stores.metrics import MetricChanges, this_host
from taskplane.celery.transport import READY_HEADER
from taskplane.stores.unique_locks import unique_digest

if TYPE_CHECKING:
    from taskplane.app import Taskplane
    from taskplane.client.handle import TaskHandle

#: Header carrying the attempt number whose rate-limit slot was already reserved.
SLOT_HEADER = "x-taskplane-slot"
#: Header carrying the digest of the task's uniqueness lock.
UNIQUE_HEADER = "x-taskplane-unique"


class TaskplaneTask(celery.Task):  # type: ignore[type-arg]
    """Runs a task function under taskplane's policies. Set up by ``Taskplane.task``."""

    Request = "taskplane.celery.worker.request:TaskplaneRequest"
    taskplane_retry: Retry | None = None
    taskplane_rate_limit: RateLimit | None = None
    taskplane_unique_for: float | None = None
    taskplane_unique_key: Callable[..., Any] | None = None

    @property
    def taskplane(self) -> Taskplane:
        """The Taskplane app this task belongs to."""
        app: Any = self.app
        return app.taskplane  # type: ignore[no-any-return]

    # -- producing -------------------------------------------------------------------------------

    def enqueue(self, *args: Any, **kwargs: Any) -> TaskHandle:
        """Queue this task with these arguments; returns a handle with ``.id``."""
        return self.taskplane.enqueue(self.name, args, kwargs)

    def enqueue_with(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        countdown: float | None = None,
        eta: Any = None,
    ) -> TaskHandle:
        """Queue with options: another ``queue``, a ``countdown`` in seconds or an ``eta`` datetime."""
        return self.taskplane.enqueue(self.name, args, kwargs or {}, queue=queue, countdown=countdown, eta=eta)

    def unique_digest(self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> str | None:
        """The uniqueness digest of a call, or None when the task is not unique."""
        if not self.taskplane_unique_for:
            return None
        key = None if self.taskplane_unique_key is None else str(self.taskplane_unique_key(*args, **kwargs))
        return unique_digest(self.name, args, kwargs, key)

    def apply_async(
        self,
        args: Any = None,
        kwargs: Any = None,
        task_id: str | None = None,
        producer: Any = None,
        link: Any = None,
        link_error: Any = None,
        shadow: Any = None,
        **options: Any,
    ) -> Any:
        """Celery's ``apply_async`` plus uniqueness; re-publications (retries, waits) skip both it and the record."""
        from celery.utils import uuid

        republish = bool(options.pop("taskplane_republish", False) or options.get("retries"))
        digest = None if republish else self.unique_digest(args or (), kwargs or {})
        if digest is not None:
            task_id = task_id or uuid()
            owner = self.taskplane.unique_locks.acquire(digest, task_id, float(self.taskplane_unique_for or 0))
            if owner is not None:
                result = self.AsyncResult(owner)
                result.taskplane_existing = True  # type: ignore[attr-defined]
                return result
            options["headers"] = {**(options.get("headers") or {}), UNIQUE_HEADER: digest}
        options["taskplane_record"] = not republish
        try:
            return celery.Task.apply_async(self, args, kwargs, task_id, producer, link, link_error, shadow, **options)
        except BaseException:
            if digest is not None and task_id is not None:
                self.taskplane.unique_locks.release(digest, task_id)
            raise

    # -- running -----------------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if request.called_directly or request.is_eager:
            return self.run(*args, **kwargs)
        queue = (request.delivery_info or {}).get("routing_key") or self.taskplane.queue_for(self.name)
        attempt = int(request.retries or 0)
        token = enter_task(TaskLogContext(str(request.id), self.name, queue, attempt))
        try:
            return self._execute(args, kwargs, queue, attempt)
        finally:
            leave_task(token)

    def _execute(self, args: tuple[Any, ...], kwargs: dict[str, Any], queue: str, attempt: int) -> Any:
        request = self.request
        tp = self.taskplane
        task_id = str(request.id)
        headers = request.headers or {}
        host = self._hostname()
        if tp.cancellations.is_cancelled(task_id):
            batch = tp.storage.batch()
            tp.records.write(task_id, self.name, queue, "cancelled", batch=batch, finished_ms=now_ms())
            revoked = self._metric_changes().count("celery_task_revoked_total", self.name, host, queue)
            tp.task_metrics.write(revoked, batch.pipe)
            batch.execute()
            self._release_unique(headers, task_id)
            raise Ignore()
        if self.taskplane_rate_limit is not None and str(headers.get(SLOT_HEADER)) != str(attempt):
            self._wait_for_rate_slot(args, kwargs, queue, attempt, headers)
        deliveries = self._count_delivery(task_id, attempt)
        if deliveries > tp.settings.max_deliveries:
            self._dead_letter(
                args,
                kwargs,
                queue,
                attempt,
                "poison",
                None,
                f"delivered {deliveries - 1} times without finishing (the process running it died)",
            )
            tp.task_metrics.write(self._metric_changes().count("celery_task_rejected_total", self.name, host, queue))
            raise Reject(f"poison message: delivered {deliveries - 1} times", requeue=False)
        started = time.time()
        changes = self._metric_changes().count("celery_task_started_total", self.name, host, queue)
        if headers.get(READY_HEADER):
            wait = started - int(headers[READY_HEADER]) / 1000
            changes.observe("taskplane_task_queue_wait_seconds", wait, self.name, queue)
        batch = tp.storage.batch()
        tp.task_metrics.write(changes, batch.pipe)
        tp.records.write(
            task_id,
            self.name,
            queue,
            "started",
            batch=batch,
            started_ms=int(started * 1000),
            attempts=attempt + 1,
            retries=attempt,
            worker=request.hostname or "",
            deliveries=deliveries,
        )
        batch.execute()
        execution = Execution(self, task_id, self.name, queue)
        token = _current.set(execution)
        try:
            result = self.run(*args, **kwargs)
        except (Ignore, Reject, CeleryRetry):
            raise
        except Exception as exc:
            execution.flush()
            self._on_exception(exc, args, kwargs, queue, attempt, started)
            raise
        finally:
            _current.reset(token)
        execution.flush()
        text, truncated = compact_json(result)
        runtime = time.time() - started
        batch = tp.storage.batch()
        tp.records.write(
            task_id,
            self.name,
            queue,
            "succeeded",
            batch=batch,
            finished_ms=now_ms(),
            runtime=round(runtime, 6),
            result=text,
            result_truncated=int(truncated),
        )
        succeeded = self._metric_changes().count("celery_task_succeeded_total", self.name, host, queue)
        tp.task_metrics.write(succeeded.observe("celery_task_runtime", runtime, self.name, host, queue), batch.pipe)
        batch.execute()
        self._release_unique(headers, task_id)
        return result

    def _hostname(self) -> str:
        return str(self.request.hostname or this_host())

    def _metric_changes(self) -> MetricChanges:
        return self.taskplane.task_metrics.changes(self._hostname())

    def _count_delivery(self, task_id: str, attempt: int) -> int:
        storage = self.taskplane.storage
        key = storage.keys.deliveries(task_id, attempt)
        pipe = storage.client.pipeline()
        pipe.incr(key)
        pipe.expire(key, self.taskplane.settings.record_retention)
        count, _ = pipe.execute()
        return int(count)

    def _wait_for_rate_slot(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], queue: str, attempt: int, headers: dict[str, Any]
    ) -> None:
        limit = self.taskplane_rate_limit
        assert limit is not None
        tp = self.taskplane
        wait = tp.rate_limiter.reserve(self.name, limit, limit.bucket(args, kwargs))
        if wait <= 0:
            return
        batch = tp.storage.batch()
        tp.records.write(
            str(self.request.id),
            self.name,
            queue,
            "scheduled",
            batch=batch,
            eta_ms=now_ms() + int(wait * 1000),
            waiting_for="rate_limit",
        )
        tp.task_metrics.write(self._metric_changes().count("taskplane_rate_limited_total", self.name), batch.pipe)
        batch.execute()
        signature = self.signature_from_request(
            self.request,
            args,
            kwargs,
            countdown=wait,
            queue=queue,
            headers={**headers, SLOT_HEADER: str(attempt)},
        )
        signature.apply_async(taskplane_republish=True)
        raise Ignore()

    def _on_exception(
        self, exc: Exception, args: tuple[Any, ...], kwargs: dict[str, Any], queue: str, attempt: int, started: float
    ) -> None:
        tp = self.taskplane
        policy = self.taskplane_retry
        task_id = str(self.request.id)
        error = {"error_type": type(exc).__name__, "error_message": str(exc)[:2000]}
        first_failure = {"first_failure_ms": now_ms()} if attempt == 0 else {}
        runtime = time.time() - started
        host = self._hostname()
        changes = self._metric_changes().observe("celery_task_runtime", runtime, self.name, host, queue)
        if policy is not None and policy.retries_on(exc) and attempt < policy.max_retries:
            delay = policy.delay(attempt + 1)
            batch = tp.storage.batch()
            tp.records.write(
                task_id,
                self.name,
                queue,
                "retrying",
                batch=batch,
                next_attempt_ms=now_ms() + int(delay * 1000),
                runtime=round(runtime, 6),
                **error,
                **first_failure,
            )
            changes.count("celery_task_retried_total", self.name, host, queue)
            tp.task_metrics.write(changes.count("taskplane_retries_total", self.name), batch.pipe)
            batch.execute()
            raise self.retry(exc=exc, countdown=delay, max_retries=None, queue=queue)
        if policy is None:
            reason = "failed"
        elif policy.retries_on(exc):
            reason = "retries_exhausted"
        else:
            reason = "not_retryable"
        self._dead_letter(args, kwargs, queue, attempt, reason, exc, str(exc), started)
        tp.task_metrics.write(changes.count("celery_task_failed_total", self.name, host, queue, type(exc).__name__))

    def _dead_letter(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        queue: str,
        attempt: int,
        reason: str,
        exc: BaseException | None,
        message: str,
        started: float | None = None,
    ) -> None:
        tp = self.taskplane
        task_id = str(self.request.id)
        record = tp.records.get(task_id)
        stamp = now_ms()
        first = int(record.fields.get("first_failure_ms", 0)) if record else 0
        letter = DeadLetter(
            id=task_id,
            name=self.name,
            queue=queue,
            reason=reason,
            args=json.loads(compact_json(list(args), 1 << 20)[0]),
            kwargs=json.loads(compact_json(kwargs, 1 << 20)[0]),
            exception_type=type(exc).__name__ if exc is not None else "",
            exception_message=message[:2000],
            traceback="".join(traceback.format_exception(exc)) if exc is not None else "",
            attempts=attempt + 1,
            first_failure_ms=first or stamp,
            last_failure_ms=stamp,
            worker=self.request.hostname or "",
        )
        runtime = {"runtime": round(time.time() - started, 6)} if started is not None else {}
        tp.bury(letter, (self.request.headers or {}).get(UNIQUE_HEADER), **runtime)

    def _release_unique(self, headers: dict[str, Any], task_id: str) -> None:
        digest = headers.get(UNIQUE_HEADER)
        if digest:
            self.taskplane.unique_locks.release(str(digest), task_id)
