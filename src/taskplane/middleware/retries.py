"""Retries: a failed attempt runs again after its policy's backoff, or is dead-lettered with the reason."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from taskplane.core.clock import now_ms
from taskplane.core.errors import ConfigurationError
from taskplane.core.policies import Retry
from taskplane.core.protocol import DeadReason, Metric, TaskState
from taskplane.middleware.base import Middleware, Run
from taskplane.middleware.failure import FailurePath
from taskplane.stores.bundle import Stores
from taskplane.stores.metrics import MetricChanges


class Retries(Middleware):
    """``retry=Retry(...)``: retryable failures wait in the delayed store (never in a worker) for their backoff.

    A failure that is not retried ends in the dead letters: ``failed`` (no policy), ``not_retryable``
    (the policy never retries that error) or ``retries_exhausted`` (the last attempt failed).
    """

    options = ("retry",)

    def __init__(self, stores: Stores, failure: FailurePath) -> None:
        self._stores = stores
        self._failure = failure

    def task_options(self, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """``taskplane_retry``: the policy.

        Raises:
            ConfigurationError: not a :class:`Retry`.
        """
        retry = options.get("retry")
        if retry is not None and not isinstance(retry, Retry):
            raise ConfigurationError(f"retry={retry!r}: give a Retry(...)")
        return {"taskplane_retry": retry}

    def on_failure(self, run: Run, exc: Exception) -> None:
        """Schedule the next attempt (raises Celery's ``Retry``) or dead-letter the task."""
        policy: Retry | None = getattr(run.task, "taskplane_retry", None)
        if policy is not None and policy.retries_on(exc) and run.attempt < policy.max_retries:
            self._retry(run, exc, policy.delay(run.attempt + 1))
        if policy is None:
            reason = DeadReason.FAILED
        elif policy.retries_on(exc) or (run.attempt and run.attempt >= policy.max_retries):  # self.retry() ran out
            reason = DeadReason.RETRIES_EXHAUSTED
        else:
            reason = DeadReason.NOT_RETRYABLE
        self._failure.bury_run(reason, run, exc=exc, runtime=time.time() - run.started)

    def on_retry(self, run: Run, exc: BaseException | None, when: float) -> None:
        """The body called ``self.retry()``: the record says retrying until its next attempt."""
        self._write_retrying(run, exc, when)

    def _retry(self, run: Run, exc: Exception, delay: float) -> None:
        self._write_retrying(run, exc, delay)
        raise run.task.retry(exc=exc, countdown=delay, max_retries=None, queue=run.queue)

    def _write_retrying(self, run: Run, exc: BaseException | None, delay: float) -> None:
        error = {} if exc is None else {"error_type": type(exc).__name__, "error_message": str(exc)[:2000]}
        first_failure = {"first_failure_ms": now_ms()} if run.attempt == 0 else {}
        self._stores.records.write(
            run.task_id,
            run.name,
            run.queue,
            TaskState.RETRYING,
            batch=run.batch,
            next_attempt_ms=now_ms() + int(delay * 1000),
            runtime=round(time.time() - run.started, 6),
            **error,
            **first_failure,
        )
        changes = MetricChanges(run.worker).count(Metric.RETRIED, run.name, run.worker, run.queue)
        self._stores.metrics.write(changes.count(Metric.RETRIES, run.name), run.batch.pipe)
        run.flush()  # the record says "retrying" before the next attempt can start
