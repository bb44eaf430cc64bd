"""Runs the middleware hooks in order: publishing, running a task, time limits, worker start and stop."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TypeVar

from celery.exceptions import Ignore, Reject
from celery.exceptions import Retry as CeleryRetry

from taskplane.core.errors import ConfigurationError
from taskplane.core.protocol import TaskState
from taskplane.middleware.base import Middleware, Publish, Run, TaskCancelled, WorkerContext, enter_run, leave_run
from taskplane.middleware.options import CORE_OPTIONS, check_option_names
from taskplane.redis.client import CONNECTION_ERRORS

log = logging.getLogger("taskplane.middleware")

#: How long a finished task's final writes wait for an unreachable Redis before they are given up.
FLUSH_PATIENCE = 15.0
#: What a run hook raises on purpose to stop or redirect the task; everything else is logged and skipped.
STOPS: tuple[type[BaseException], ...] = (TaskCancelled, Ignore, Reject, CeleryRetry)


def retry_delay(when: Any) -> float:
    """Seconds until a Celery ``Retry``'s ``when`` (a countdown, or an ETA datetime)."""
    if isinstance(when, datetime):
        return max(0.0, (when - datetime.now(when.tzinfo or UTC)).total_seconds())
    return float(when or 0.0)


M = TypeVar("M", bound=Middleware)
#: While set (a batch enqueue collects its messages and sends them afterwards), :meth:`Chain.published` adds
#: its hooks' calls here instead of running them: the batch runs them once its messages went out.
deferred_publications: ContextVar[list[Callable[[], None]] | None] = ContextVar(
    "taskplane_deferred_publications", default=None
)


class Chain:
    """The ordered middleware of one app.

    Publish hooks are not isolated: an error fails the publish, so an enqueue is never half done. Run
    and worker hooks are: one that fails is logged and the others still run, unless it raised one of
    :data:`STOPS` (cancel, poison, rate wait, retry) to stop the task.
    """

    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self.middleware = tuple(middleware)
        #: Per thread: the final writes of its last task, written but their replies not read yet.
        self._unsettled = threading.local()
        names = list(CORE_OPTIONS)
        for item in self.middleware:
            names.extend(option for option in item.options if option not in names)
        #: Every valid ``@tp.task`` option: the core ones plus what each middleware owns.
        self.option_names = tuple(names)
        # The hooks of every enqueue and every run, only where a middleware has them (a call less each for the rest).
        self._before_publish = self._having("before_publish")
        self._after_publish = self._having("after_publish")
        self._before_run = self._having("before_run")
        self._after_start = self._having("after_start")
        self._after_run = self._having("after_run")
        self._on_failure = self._having("on_failure")
        self._on_retry = self._having("on_retry")

    def _having(self, hook: str) -> tuple[Middleware, ...]:
        """The middleware that overrides ``hook`` of :class:`Middleware` (the base one does nothing), in order."""
        return tuple(item for item in self.middleware if getattr(type(item), hook) is not getattr(Middleware, hook))

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

    def find(self, kind: type[M]) -> M:
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
        for item in self._before_publish:
            item.before_publish(publish)
            if publish.existing_id is not None:
                return

    def publish_many(self, publishes: Sequence[Publish]) -> None:
        """Run every ``before_publish_many`` hook on a batch of new messages sharing one ``batch``."""
        for item in self.middleware:
            item.before_publish_many(publishes)

    def published(self, publishes: Sequence[Publish]) -> None:
        """Run every ``after_publish`` hook (errors here are logged: the messages are out), or, while a batch
        collects its messages (:data:`deferred_publications`), once the batch sent them."""
        deferred = deferred_publications.get()
        if deferred is not None:
            deferred.append(functools.partial(self._announce, publishes))
            return
        self._announce(publishes)

    def _announce(self, publishes: Sequence[Publish]) -> None:
        for item in self._after_publish:
            self._isolated(item.after_publish, publishes)

    def publish_failed(self, publish: Publish) -> None:
        """Undo the publish hooks after the message could not be sent (errors here are logged)."""
        for item in self.middleware:
            self._isolated(item.publish_failed, publish)

    # -- running ------------------------------------------------------------------------------------

    def run(self, run: Run, body: Callable[[], Any]) -> Any:
        """Run the before hooks, send their writes (one round trip), run the after-start hooks, the task
        body, then the after or failure hooks; returns the body's result. A failure's writes wait for
        their reply (its retry or dead letter must land before the delivery is acknowledged); a success's
        or cancellation's go out without waiting (their replies are read by :meth:`settle`, first thing
        in the thread's next run).

        Redis unreachable before the body: the delivery goes back to its queue, the body does not run.
        Redis unreachable while the failure hooks decide (retry or dead letter): the delivery goes back
        too, so a failure is never acknowledged without its retry or dead letter.

        Raises:
            celery.exceptions.Ignore: the task was cancelled or put back to wait for a rate-limit slot.
            celery.exceptions.Reject: dead-lettered without running (poison), or returned to its queue.
            celery.exceptions.Retry: the body failed and will run again later.
            Exception: whatever the body raised, once the failure hooks have seen it.
        """
        self.settle()
        try:
            unreachable = [error for item in self._before_run if (error := self._isolated(item.before_run, run))]
            if not unreachable:
                unreachable = [error for error in [self._flush(run)] if error]
            if not unreachable:  # one round trip before the body: every hook acts on its replies now
                unreachable = [error for item in self._after_start if (error := self._isolated(item.after_start, run))]
        except TaskCancelled:
            run.outcome = TaskState.CANCELLED
            self._after(run)
            raise Ignore() from None
        if unreachable:
            raise Reject(f"Redis unreachable before the task ran: {unreachable[0]}", requeue=True)
        token = enter_run(run)
        try:
            run.result = body()
        except CeleryRetry as retry:  # the body called self.retry(): its next attempt is queued
            for item in self._on_retry:
                self._isolated(item.on_retry, run, retry.exc, retry_delay(retry.when))
            self._flush(run)
            raise
        except STOPS:
            raise
        except Exception as exc:
            unreachable = [error for item in self._on_failure if (error := self._isolated(item.on_failure, run, exc))]
            unreachable += [error for error in [self._flush(run)] if error]
            if unreachable:
                raise Reject(f"Redis unreachable while recording a failure: {unreachable[0]}", requeue=True) from exc
            raise
        finally:
            leave_run(token)
        # A body that returned after is_cancelled() said so stopped on request: it ends cancelled
        run.outcome = TaskState.CANCELLED if run.cancel_seen else TaskState.SUCCEEDED
        self._after(run)
        return run.result

    def time_limit(self, run: Run, timeout: float) -> None:
        """The worker killed ``run`` at its hard time limit: tell every middleware."""
        for item in self.middleware:
            self._isolated(item.on_time_limit, run, timeout)
        self._flush(run)

    def _after(self, run: Run) -> None:
        for item in self._after_run:
            self._isolated(item.after_run, run)
        try:
            # The final writes go out now; their replies are read when this thread's next task starts (or its
            # process ends): the pool process does not wait a round trip after every task. They are in the
            # server's hands before the worker acknowledges the delivery.
            self._unsettled.sent = run.send()
            return
        except CONNECTION_ERRORS as exc:
            log.warning("could not write the state of task %s[%s]: Redis unreachable: %s", run.name, run.task_id, exc)
        self._patiently(run.flush)

    def settle(self) -> None:
        """Read the replies of the final writes this thread sent last (see :meth:`run`); if the connection
        broke before they came, the writes are sent again, waiting out a short outage."""
        sent = getattr(self._unsettled, "sent", None)
        self._unsettled.sent = None
        if sent is not None:
            self._patiently(sent.settle)

    @staticmethod
    def _patiently(send: Callable[[], object]) -> None:
        """Send a task's final writes, waiting out a short Redis outage rather than dropping them."""
        deadline = time.monotonic() + FLUSH_PATIENCE
        delay = 0.2
        while True:
            try:
                send()
                return
            except CONNECTION_ERRORS as exc:
                if time.monotonic() >= deadline:
                    log.error(
                        "gave up writing a task's final state: Redis unreachable for %.0f s: %s", FLUSH_PATIENCE, exc
                    )
                    return
                log.warning("could not write a task's final state: Redis unreachable: %s", exc)
            except Exception:
                log.exception("could not write a task's final state")
                return
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    # -- workers ------------------------------------------------------------------------------------

    def worker_started(self, worker: WorkerContext) -> None:
        """Tell every middleware that a worker started."""
        for item in self.middleware:
            self._isolated(item.on_worker_start, worker)

    def worker_stopped(self, worker: WorkerContext) -> None:
        """Tell every middleware that a worker stopped (after settling this thread's last final writes)."""
        self.settle()
        for item in self.middleware:
            self._isolated(item.on_worker_stop, worker)

    # -- isolation ----------------------------------------------------------------------------------

    @staticmethod
    def _isolated(hook: Callable[..., None], *args: Any) -> BaseException | None:
        """Run one hook; returns the error if Redis was unreachable (other errors are only logged)."""
        try:
            hook(*args)
        except STOPS:
            raise
        except CONNECTION_ERRORS as exc:
            owner = getattr(hook, "__self__", None)
            log.warning("middleware %s.%s: Redis unreachable: %s", type(owner).__name__, hook.__name__, exc)
            return exc
        except Exception:
            owner = getattr(hook, "__self__", None)
            log.exception("middleware %s.%s failed", type(owner).__name__, getattr(hook, "__name__", "hook"))
        return None

    @staticmethod
    def _flush(run: Run) -> BaseException | None:
        """Send the run's queued writes; returns the error if Redis was unreachable."""
        try:
            run.flush()
        except CONNECTION_ERRORS as exc:
            log.warning("could not write the state of task %s[%s]: Redis unreachable: %s", run.name, run.task_id, exc)
            return exc
        except Exception:
            log.exception("could not write the state of task %s[%s]", run.name, run.task_id)
        return None
