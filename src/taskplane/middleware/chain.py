"""Runs the middleware hooks in order: publishing, running a task, time limits, worker start and stop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from celery.exceptions import Ignore, Reject
from celery.exceptions import Retry as CeleryRetry

from taskplane.core.errors import ConfigurationError
from taskplane.core.protocol import TaskState
from taskplane.middleware.base import Middleware, Publish, Run, TaskCancelled, WorkerContext, enter_run, leave_run
from taskplane.middleware.options import CORE_OPTIONS, check_option_names

log = logging.getLogger("taskplane.middleware")

#: What a run hook raises on purpose to stop or redirect the task; everything else is logged and skipped.
STOPS: tuple[type[BaseException], ...] = (TaskCancelled, Ignore, Reject, CeleryRetry)


class Chain:
    """The ordered middleware of one app.

    Publish hooks are not isolated: an error fails the publish, so an enqueue is never half done. Run
    and worker hooks are: one that fails is logged and the others still run, unless it raised one of
    :data:`STOPS` (cancel, poison, rate wait, retry) to stop the task.
    """

    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self.middleware = tuple(middleware)
        names = list(CORE_OPTIONS)
        for item in self.middleware:
            names.extend(option for option in item.options if option not in names)
        #: Every valid ``@tp.task`` option: the core ones plus what each middleware owns.
        self.option_names = tuple(names)

    def task_options(self, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Celery task attributes for ``options``, each checked by the middleware that owns it.

        Raises:
            ConfigurationError: an unknown option (with a "did you mean") or a bad value.
        """
        check_option_names(options, self.option_names)
        attributes: dict[str, Any] = {}
        for item in self.middleware:
            owned = {key: value for key, value in options.items() if key in item.options}
            attributes.update(item.task_options(name, owned))
        return attributes

    def find(self, kind: type[Middleware]) -> Middleware:
        """The installed middleware of type ``kind``.

        Raises:
            ConfigurationError: none is installed.
        """
        for item in self.middleware:
            if isinstance(item, kind):
                return item
        raise ConfigurationError(f"no {kind.__name__} middleware is installed")

    # -- publishing ---------------------------------------------------------------------------------

    def publish(self, publish: Publish) -> None:
        """Run every ``before_publish`` hook (until one finds an existing task). The writes they queue on
        ``publish.batch`` are the caller's to send, together with the message."""
        for item in self.middleware:
            item.before_publish(publish)
            if publish.existing_id is not None:
                return

    def publish_failed(self, publish: Publish) -> None:
        """Undo the publish hooks after the message could not be sent (errors here are logged)."""
        for item in self.middleware:
            self._isolated(item.publish_failed, publish)

    # -- running ------------------------------------------------------------------------------------

    def run(self, run: Run, body: Callable[[], Any]) -> Any:
        """Run the before hooks, the task body, then the after or failure hooks; returns the body's result.

        Raises:
            celery.exceptions.Ignore: the task was cancelled or put back to wait for a rate-limit slot.
            celery.exceptions.Reject: the task was dead-lettered without running (poison).
            celery.exceptions.Retry: the body failed and will run again later.
            Exception: whatever the body raised, once the failure hooks have seen it.
        """
        try:
            for item in self.middleware:
                self._isolated(item.before_run, run)
        except TaskCancelled:
            run.outcome = TaskState.CANCELLED
            self._after(run)
            raise Ignore() from None
        finally:
            self._flush(run)
        token = enter_run(run)
        try:
            run.result = body()
        except STOPS:
            raise
        except Exception as exc:
            try:
                for item in self.middleware:
                    self._isolated(item.on_failure, run, exc)
            finally:
                self._flush(run)
            raise
        finally:
            leave_run(token)
        run.outcome = TaskState.SUCCEEDED
        self._after(run)
        return run.result

    def time_limit(self, run: Run, timeout: float) -> None:
        """The worker killed ``run`` at its hard time limit: tell every middleware."""
        for item in self.middleware:
            self._isolated(item.on_time_limit, run, timeout)
        self._flush(run)

    def _after(self, run: Run) -> None:
        for item in self.middleware:
            self._isolated(item.after_run, run)
        self._flush(run)

    # -- workers ------------------------------------------------------------------------------------

    def worker_started(self, worker: WorkerContext) -> None:
        """Tell every middleware that a worker started."""
        for item in self.middleware:
            self._isolated(item.on_worker_start, worker)

    def worker_stopped(self, worker: WorkerContext) -> None:
        """Tell every middleware that a worker stopped."""
        for item in self.middleware:
            self._isolated(item.on_worker_stop, worker)

    # -- isolation ----------------------------------------------------------------------------------

    @staticmethod
    def _isolated(hook: Callable[..., None], *args: Any) -> None:
        try:
            hook(*args)
        except STOPS:
            raise
        except Exception:
            owner = getattr(hook, "__self__", None)
            log.exception("middleware %s.%s failed", type(owner).__name__, getattr(hook, "__name__", "hook"))

    @staticmethod
    def _flush(run: Run) -> None:
        try:
            run.flush()
        except Exception:
            log.exception("could not write the state of task %s[%s]", run.name, run.task_id)
