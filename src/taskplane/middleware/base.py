"""The task lifecycle's extension point: a :class:`Middleware` with typed no-op hooks, and what they receive.

Each behaviour (records, metrics, cancellation, rate limit, poison cap, retries, uniqueness, progress,
time limits) is one subclass in its own module; :class:`taskplane.middleware.chain.Chain` calls them in
order. A hook does nothing unless overridden.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar

from taskplane.core.protocol import TaskState
from taskplane.redis.batch import Batch
from taskplane.redis.sent import SentBatch
from taskplane.stores.rate_limits import SlotRequest


class TaskCancelled(Exception):
    """Raised by a ``before_run`` hook: the task was cancelled and must not run."""


@dataclass
class Publish:
    """One message about to be published, as the publish hooks see it.

    ``fresh`` is True for a new task; False for a re-publication of a running one (a retry, a rate-limit
    wait) or a dead-letter requeue, which write their own record. Writes queued on ``batch`` are sent
    in one round trip before the message is published.
    """

    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    task_id: str
    queue: str
    eta_ms: int | None
    headers: dict[str, Any]
    fresh: bool
    task: Any  # the registered Celery task, None for a name this app does not know
    batch: Batch
    #: True for a dead letter put back to work: its record is reset (attempts, delivery count, error).
    requeued: bool = False
    #: Set by a hook when an equal task exists already: nothing is published, this id is returned.
    existing_id: str | None = None


@dataclass
class Run:
    """One delivery of a task being run, as the run hooks see it.

    Writes queued on ``batch`` go out in one round trip at the end of each phase (before the body,
    after it); :meth:`flush` sends them earlier when a hook must order them before something else.
    """

    task: Any  # the Celery task
    task_id: str
    name: str
    queue: str
    attempt: int
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    headers: dict[str, Any]
    worker: str
    new_batch: Callable[[], Batch]
    batch: Batch = field(init=False)
    started: float = field(init=False)
    #: Set when the start write landed: how often this attempt was delivered, this delivery included.
    deliveries: int = 0
    #: Set when the start write landed: ``run``, ``cancelled`` (before it could start), ``done`` (it had
    #: already succeeded: a duplicate delivery) or ``wait`` (its rate-limit slot lies ahead).
    verdict: str = "run"
    #: Set by the rate-limit middleware in ``before_run``: the slot the start write reserves.
    slot: SlotRequest | None = None
    #: Set when the start write landed with the verdict ``wait``: seconds until the slot it reserved.
    wait: float = 0.0
    result: Any = None
    outcome: TaskState | None = None
    #: Set by the progress middleware: ``report(values, force, meta=None)`` stores progress.
    report_progress: Callable[..., None] | None = None
    #: Set by the cancellation middleware: True once cancellation was requested.
    check_cancelled: Callable[[], bool] | None = None
    #: Set by the cancellation middleware when ``is_cancelled()`` told the body it was cancelled: a body that
    #: then returns ends cancelled (it stopped on request), not succeeded.
    cancel_seen: bool = False

    def __post_init__(self) -> None:
        self.batch = self.new_batch()
        self.started = time.time()

    def flush(self) -> None:
        """Send the writes queued so far (and start a new batch); if that fails they stay queued."""
        if len(self.batch.pipe):
            self.batch.execute()
        self.batch = self.new_batch()

    def send(self) -> SentBatch | None:
        """Write the writes queued so far without waiting for the replies (and start a new batch); None if
        there were none. If the write fails they stay queued."""
        sent = self.batch.send() if len(self.batch.pipe) else None
        self.batch = self.new_batch()
        return sent


@dataclass
class WorkerContext:
    """What the worker hooks get: the worker's name, its pool and a way to run periodic jobs."""

    hostname: str
    app: Any  # the Celery app
    pool: Callable[[], Any]
    add_periodic: Callable[[str, float, Callable[[], object]], None]


class Middleware:
    """Base of every task-lifecycle behaviour: override the hooks you need; the rest do nothing.

    ``options`` names the ``@tp.task(...)`` options this behaviour owns; :meth:`task_options` checks
    their values and turns them into attributes of the Celery task.
    """

    options: ClassVar[tuple[str, ...]] = ()

    def task_options(self, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Celery task attributes for the declared ``options`` (only those in :attr:`options` are given).

        Raises:
            ConfigurationError: a bad value.
        """
        return {}

    def before_publish(self, publish: Publish) -> None:
        """A message is about to be published (an error here fails the publish: nothing is sent)."""

    def before_publish_many(self, publishes: Sequence[Publish]) -> None:
        """A batch of new messages of one task to one queue is about to be published, all writing to one shared batch
        (a task whose hooks could find an existing task, ``unique_for``, is not published this way).
        By default :meth:`before_publish` for each; override to write once for all."""
        for publish in publishes:
            self.before_publish(publish)

    def publish_failed(self, publish: Publish) -> None:
        """Publishing the message failed after ``before_publish``: undo what it did."""

    def after_publish(self, publishes: Sequence[Publish]) -> None:
        """These messages (one, or a batch of one task) were published: their message and the writes the
        publish hooks queued were sent. Not called for a call that found an existing task."""

    def before_run(self, run: Run) -> None:
        """A delivery is about to run. Raise ``TaskCancelled``, Celery's ``Ignore`` or ``Reject`` to stop it."""

    def after_start(self, run: Run) -> None:
        """The writes queued by ``before_run`` landed (``run.verdict`` and ``run.deliveries`` are set).
        Raise like ``before_run`` to stop the delivery before its body runs."""

    def after_run(self, run: Run) -> None:
        """The run ended with ``run.outcome``: succeeded (``run.result`` holds the value) or cancelled."""

    def on_failure(self, run: Run, exc: Exception) -> None:
        """The task body raised ``exc``."""

    def on_retry(self, run: Run, exc: BaseException | None, when: float) -> None:
        """The task body asked to run again (Celery's ``self.retry(exc=...)``) in ``when`` seconds; the next
        attempt is queued already."""

    def on_time_limit(self, run: Run, timeout: float) -> None:
        """The worker killed the task at its hard time limit (called in the worker's main process)."""

    def on_worker_start(self, worker: WorkerContext) -> None:
        """A worker started (its main process, once the pool exists)."""

    def on_worker_stop(self, worker: WorkerContext) -> None:
        """A worker finished its shutdown (after the pool drained)."""


_current_run: ContextVar[Run | None] = ContextVar("taskplane_run", default=None)


def current_run() -> Run:
    """The delivery running in this context.

    Raises:
        RuntimeError: called outside a running taskplane task.
    """
    run = _current_run.get()
    if run is None:
        raise RuntimeError("progress()/is_cancelled() can only be called inside a running taskplane task")
    return run


def running() -> Run | None:
    """The delivery running in this context, or None outside a running taskplane task."""
    return _current_run.get()


def enter_run(run: Run) -> Any:
    """Make ``run`` the current delivery; returns the token for :func:`leave_run`."""
    return _current_run.set(run)


def leave_run(token: Any) -> None:
    """Undo :func:`enter_run`."""
    _current_run.reset(token)
