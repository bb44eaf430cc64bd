"""Taskplane: builds the Celery app and holds the task registry, topology and stores."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cached_property
from typing import Any, Literal, overload

from taskplane.client import dead_letters as dead_letter_ops, producer, queues as operations
from taskplane.stores.api_keys import ApiKeyStore
from taskplane.stores.cancellations import CancellationStore
from taskplane.celery.app import TaskplaneCelery
from taskplane.celery.config import celery_config
from taskplane.stores.dead_letters import DeadFilter, DeadLetter, DeadLetterStore
from taskplane.stores.delayed import DelayedStore
from taskplane.redis.embedded import EmbeddedServer
from taskplane.core.errors import (
    ConfigurationError,
)
from taskplane.client.handle import TaskHandle
from taskplane.stores.idempotency import IdempotencyKeys
from taskplane.stores.rate_limits import RateLimiter
from taskplane.core.profiles import Profiles, WorkerProfile
from taskplane.stores.records import RecordPage, RecordStore, TaskRecord
from taskplane.redis.client import CONNECTION_ERRORS, unavailable
from taskplane.scheduler.registry import ScheduleRegistry
from taskplane.scheduler.schedule import Missed, Schedule
from taskplane.core.settings import Settings, load_settings
from taskplane.redis.storage import Storage
from taskplane.celery.task import TaskplaneTask
from taskplane.stores.metrics import TaskMetrics
from taskplane.middleware.options import celery_task_options, check_option_names
from taskplane.core.registry import TaskRegistry
from taskplane.core.topology import Topology
from taskplane.stores.unique_locks import UniqueLocks

log = logging.getLogger("taskplane")


class Taskplane:
    """A job platform on Celery + Redis: declare tasks with policies, enqueue them, operate the queues.

    Configuration comes from keyword arguments, else ``TASKPLANE_*`` environment variables. With no
    Redis URL, a private embedded server is started under the data directory on first use.
    """

    def __init__(
        self,
        name: str = "taskplane",
        *,
        queues: Mapping[str, str] | None = None,
        fallback: Literal["error", "inline"] = "error",
        settings: Settings | None = None,
        **setting_overrides: Any,
    ) -> None:
        if fallback not in ("error", "inline"):
            raise ConfigurationError(f"fallback must be 'error' or 'inline', not {fallback!r}")
        self.name = name
        self.settings = settings or load_settings(**setting_overrides)
        self.fallback = fallback
        self.topology = Topology()
        for queue, tier in (queues or {}).items():
            self.topology.add_queue(queue, tier)
        self.profiles = Profiles(self.topology)
        self.schedules = ScheduleRegistry(self)
        self.registry = TaskRegistry()
        self._configured = False
        self._redis_url: str | None = None
        self.celery = TaskplaneCelery(name, self)
        self.celery.add_defaults(self._celery_defaults)
        from taskplane.celery.worker.bootstep import TaskplaneWorkerStep

        self.celery.steps["worker"].add(TaskplaneWorkerStep)

    def __repr__(self) -> str:
        return f"Taskplane({self.name!r})"

    # -- configuration ----------------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        """The Redis URL in use (starting the embedded server the first time, when none is configured)."""
        if self._redis_url is None:
            if self.settings.redis_url:
                self._redis_url = self.settings.redis_url
            else:
                server = EmbeddedServer(self.settings.data_dir, self.settings.redis_server)
                self._redis_url = server.start().url
                log.info("taskplane: using the embedded server under %s", server.directory)
        return self._redis_url

    def _celery_defaults(self) -> dict[str, Any]:
        self._configured = True
        config = celery_config(self.settings, self.topology, self.redis_url)
        config["task_routes"] = (self._route,)
        return config

    def _route(self, name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **extra: Any) -> dict[str, str]:
        return {"queue": self.queue_for(name)}

    def add_queue(self, name: str, tier: str = "normal") -> None:
        """Declare a queue served at ``tier``'s priority (before the app is first used).

        Raises:
            ConfigurationError: bad name or tier, or the app is already configured.
        """
        if self._configured:
            raise ConfigurationError(f"declare queue {name!r} before the app is used (pass queues= to Taskplane)")
        self.topology.add_queue(name, tier)

    def profile(
        self,
        name: str,
        queues: list[str],
        concurrency: int | None = None,
        prefetch: int = 1,
        max_tasks_per_child: int | None = None,
    ) -> WorkerProfile:
        """Declare a named worker profile (``taskplane worker --profile NAME``)."""
        return self.profiles.declare(name, queues, concurrency, prefetch, max_tasks_per_child)

    def queue_for(self, name: str) -> str:
        """The queue a task is routed to (``normal`` when it declared none)."""
        return self.registry.queue_for(name)

    # -- tasks -----------------------------------------------------------------------------------

    @overload
    def task(self, fn: Callable[..., Any], **options: Any) -> TaskplaneTask: ...

    @overload
    def task(self, fn: None = None, **options: Any) -> Callable[[Callable[..., Any]], TaskplaneTask]: ...

    def task(
        self, fn: Callable[..., Any] | None = None, **options: Any
    ) -> TaskplaneTask | Callable[[Callable[..., Any]], TaskplaneTask]:
        """Declare a task: ``@tp.task`` or ``@tp.task(queue=..., retry=Retry(...), rate_limit="30/m", ...)``.

        Options: name, queue, retry, rate_limit (str or RateLimit), time_limit, soft_time_limit,
        unique_for (seconds), unique_key (callable of the arguments), bind.

        Raises:
            ConfigurationError: an unknown option (the message names the valid ones) or a bad value.
        """
        check_option_names(options)

        def register(func: Callable[..., Any]) -> TaskplaneTask:
            return self._register(func, **options)

        return register(fn) if fn is not None else register

    def _register(self, func: Callable[..., Any], **options: Any) -> TaskplaneTask:
        celery_options = celery_task_options(func, options, self.topology, self.settings.soft_time_limit)
        # shared=False: Celery would otherwise give this task to every app created later in the process.
        task: Any = self.celery.task(**{**celery_options, "shared": False})(func)
        self.registry.add(celery_options["name"], celery_options["queue"], func, task)
        return task  # type: ignore[no-any-return]

    def task_names(self) -> list[str]:
        """Names of the tasks declared through this app."""
        return self.registry.names()

    def get_task(self, name: str) -> TaskplaneTask:
        """The registered task called ``name``.

        Raises:
            UnknownTaskError: not registered (the message lists the known names).
        """
        self.registry.require(name)
        task: Any = self.celery.tasks[name]
        return task  # type: ignore[no-any-return]

    def check_arguments(self, name: str, args: Any, kwargs: Any) -> None:
        """Check a call against the task function's signature.

        Raises:
            UnknownTaskError: no such task.
            TaskArgumentsError: the arguments do not fit (one line naming the problem).
        """
        self.registry.check_arguments(name, args, kwargs)

    def periodic(
        self,
        task: Any,
        *,
        every: float | None = None,
        cron: str | None = None,
        tz: str = "UTC",
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        queue: str | None = None,
        name: str | None = None,
        missed: Missed = "run_once",
    ) -> Schedule:
        """Run ``task`` (a task or its name) every ``every`` seconds or at each ``cron`` time in ``tz``.

        ``taskplane scheduler -A app`` fires it; any number of schedulers may run, one leads. ``missed``
        decides a slot that passed with no leader: ``"run_once"`` fires it once late, ``"skip"`` drops it.
        The name defaults to the task's name.

        Raises:
            ConfigurationError: bad timing, time zone, name or queue; arguments that do not fit the task;
                a name used twice.
        """
        return self.schedules.declare(
            task, every=every, cron=cron, tz=tz, args=args, kwargs=kwargs, queue=queue, name=name, missed=missed
        )

    # -- producing -------------------------------------------------------------------------------

    def enqueue(
        self,
        name: str,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        task_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> TaskHandle:
        """Queue task ``name``; returns its handle. ``unique_for`` tasks may return an existing task's handle,
        and so does a repeated ``idempotency_key`` (for as long as records are kept).

        Raises:
            UnknownTaskError, TaskArgumentsError, ConfigurationError (unknown queue, negative countdown),
            IdempotencyConflictError (the key was used for another call), PayloadTooLargeError,
            RedisUnavailableError (unless ``fallback="inline"``).
        """
        return producer.enqueue(self, name, args, kwargs, queue, countdown, eta, task_id, idempotency_key)

    # -- stores ----------------------------------------------------------------------------------

    @cached_property
    def storage(self) -> Storage:
        """Redis client, key names and scripts."""
        return Storage.from_url(self.redis_url, self.settings.key_prefix)

    @cached_property
    def records(self) -> RecordStore:
        """Task records."""
        return RecordStore(self.storage, self.settings.record_retention)

    @cached_property
    def dead_letters(self) -> DeadLetterStore:
        """Dead-letter queues."""
        return DeadLetterStore(self.storage, self.topology.names(), self.settings.dead_letter_cap)

    @cached_property
    def cancellations(self) -> CancellationStore:
        """Cancellation markers."""
        return CancellationStore(self.storage, self.settings.record_retention)

    @cached_property
    def idempotency(self) -> IdempotencyKeys:
        """Idempotency keys of enqueue calls."""
        return IdempotencyKeys(self.storage, self.settings.record_retention)

    @cached_property
    def api_keys(self) -> ApiKeyStore:
        """API keys of the HTTP API."""
        return ApiKeyStore(self.storage)

    @cached_property
    def unique_locks(self) -> UniqueLocks:
        """Uniqueness locks."""
        return UniqueLocks(self.storage)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        """Cluster-wide rate limiter."""
        return RateLimiter(self.storage)

    @cached_property
    def task_metrics(self) -> TaskMetrics:
        """Cluster-wide task counters and histograms in Redis (what ``/metrics`` reports)."""
        return TaskMetrics(self.storage)

    @cached_property
    def delayed(self) -> DelayedStore:
        """Broker-side delayed store."""
        return DelayedStore(self.storage)

    def ping(self) -> None:
        """Check that Redis answers.

        Raises:
            RedisUnavailableError: it does not.
        """
        try:
            self.storage.client.ping()
        except CONNECTION_ERRORS as exc:
            raise unavailable(self.redis_url, exc) from None

    # -- operating -------------------------------------------------------------------------------

    def status(self, task_id: str) -> TaskRecord | None:
        """The task's record, or None if no such task exists."""
        return self.records.get(task_id)

    def result(self, task_id: str) -> Any:
        """The result of a finished task, without waiting.

        Raises:
            NotFoundError: no such task.
            NotFinishedError: it has not finished yet.
            TaskFailedError: it ended dead-lettered or cancelled.
        """
        return operations.result(self, task_id)

    def tasks(
        self,
        state: str | None = None,
        name: str | None = None,
        queue: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RecordPage:
        """Task records newest first, filtered by state, name, queue and creation time, paged by cursor.

        Raises:
            InvalidRequestError: an unknown state or a cursor that was not handed out.
        """
        return self.records.find(state, name, queue, since_ms, until_ms, limit, cursor)

    def cancel(self, task_id: str, terminate_after: float | None = None) -> str:
        """Cancel a task: a queued or delayed one never runs; a running one sees ``is_cancelled()``
        and, if ``terminate_after`` is given, is terminated that many seconds later. Returns the state.

        Raises:
            NotFoundError: no such task.
        """
        return operations.cancel(self, task_id, terminate_after)

    def queue_stats(self) -> list[dict[str, Any]]:
        """Ready, delayed and dead counts per queue, highest tier first."""
        return operations.queue_stats(self)

    def workers(self) -> list[dict[str, Any]]:
        """Live workers from their heartbeats, newest first."""
        from taskplane.stores.workers import live_workers

        return live_workers(self.storage)

    def workers_per_queue(self) -> dict[str, int]:
        """How many live workers consume each declared queue (0 for a queue nobody serves)."""
        return operations.workers_per_queue(self)

    def requeue_dead(self, letter: DeadLetter, to_queue: str | None = None) -> str:
        """Put one dead letter back to work, atomically (see :func:`taskplane.client.dead_letters.requeue`)."""
        return dead_letter_ops.requeue(self, letter, to_queue)

    def bury(self, letter: DeadLetter, unique_digest: str | None = None, **record_fields: Any) -> None:
        """Dead-letter a task (see :func:`taskplane.client.dead_letters.bury`)."""
        dead_letter_ops.bury(self, letter, unique_digest, **record_fields)

    def select_dead(
        self, ids: list[str] | None = None, where: DeadFilter | None = None, everything: bool = False
    ) -> list[DeadLetter]:
        """Dead letters by id or filter (see :func:`taskplane.client.dead_letters.select`)."""
        return dead_letter_ops.select(self, ids, where, everything)

    def requeue_dead_letters(
        self,
        ids: list[str] | None = None,
        where: DeadFilter | None = None,
        everything: bool = False,
        to_queue: str | None = None,
    ) -> list[str]:
        """Requeue the selected dead letters (into ``to_queue`` if given); returns the new task ids.

        Raises:
            InvalidRequestError: an empty or contradictory selection. NotFoundError: an unknown id.
        """
        if to_queue is not None:
            self.topology.get(to_queue)
        return [self.requeue_dead(letter, to_queue) for letter in self.select_dead(ids, where, everything)]

    def purge_dead_letters(
        self, ids: list[str] | None = None, where: DeadFilter | None = None, everything: bool = False
    ) -> int:
        """Delete the selected dead letters for good; returns how many were removed.

        Raises:
            InvalidRequestError: an empty or contradictory selection. NotFoundError: an unknown id.
        """
        return dead_letter_ops.purge(self, self.select_dead(ids, where, everything))
