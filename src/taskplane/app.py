"""Taskplane: the composition root. It builds the settings, stores, middleware chain and Celery app, and
offers the operations users call (enqueue, status, result, cancel) and the namespaces ``tp.dead_letters``,
``tp.queues``, ``tp.schedules`` and ``tp.workers``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal, overload

from prometheus_client import CollectorRegistry

from taskplane.celery.app import TaskplaneCelery
from taskplane.celery.results import CeleryResults
from taskplane.celery.task import TaskplaneTask, task_base
from taskplane.celery.user_config import CeleryCompat
from taskplane.celery.worker.bootstep import TaskplaneWorkerStep
from taskplane.client.dead_letters import DeadLetters
from taskplane.client.deprecated import DeprecatedNames
from taskplane.client.operations import TaskOperations
from taskplane.client.queues import Queues
from taskplane.client.workers import Workers
from taskplane.core.celery_options import translate as translate_celery_options
from taskplane.core.errors import ConfigurationError
from taskplane.core.profiles import Profiles, WorkerProfile
from taskplane.core.registry import TaskRegistry
from taskplane.core.settings import Settings, load_settings
from taskplane.core.topology import Topology
from taskplane.middleware.chain import Chain
from taskplane.middleware.defaults import default_middleware
from taskplane.middleware.failure import FailurePath
from taskplane.middleware.options import check_option_names, core_task_options, task_name
from taskplane.observability.prometheus import TaskplaneCollector, registry_for
from taskplane.redis.client import check_server
from taskplane.redis.embedded import EmbeddedServer, choose_server
from taskplane.scheduler.registry import Schedules
from taskplane.scheduler.schedule import Missed, Schedule
from taskplane.scheduler.service import Scheduler
from taskplane.stores.bundle import Stores

log = logging.getLogger("taskplane")


class Taskplane(TaskOperations, DeprecatedNames, CeleryCompat):
    """A job platform on Celery + Redis: declare tasks with policies, enqueue them, operate the queues.

    Configuration comes from keyword arguments, else ``TASKPLANE_*`` environment variables. With no
    Redis URL, a private embedded server is started under the data directory on first use.
    """

    schedules: Schedules

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
        self.registry = TaskRegistry()
        self._configured = False
        self._redis_url: str | None = None
        #: The embedded server in use, once the Redis URL was resolved without one configured.
        self.embedded: EmbeddedServer | None = None
        #: Hears, once, one line saying which Redis server this app uses (the CLI prints it on stderr).
        self.on_server: Callable[[str], None] = log.info
        self.stores = Stores(lambda: self.redis_url, self.settings, self.topology, self.queue_names)
        self.failure = FailurePath(
            lambda: self.stores.storage, self.settings.record_retention, self.stores.dead_letter_cap
        )
        self.chain = Chain(
            [
                *default_middleware(self.stores, self.failure, self.settings, self.registry.names, self.topology.names),
                CeleryResults(),
            ]
        )
        self.celery = TaskplaneCelery(
            name,
            settings=self.settings,
            topology=self.topology,
            registry=self.registry,
            stores=self.stores,
            chain=self.chain,
            failure=self.failure,
            fallback=fallback,
        )
        self.celery.add_defaults(self._celery_defaults)
        self.celery.declare = self.task  # @tp.celery.task and @shared_task declare taskplane tasks
        self.celery.make_scheduler = self.scheduler  # celery beat runs taskplane's scheduler
        self.registry.on_miss = self.declare_shared_tasks
        self.topology.on_miss = self._queue_from_team_config
        self.celery.steps["worker"].add(TaskplaneWorkerStep)
        self.producer = self.celery.producer
        self.task_lookup = self.celery.task_lookup
        #: Dead-letter queues: find, get, requeue, purge.
        self.dead_letters = DeadLetters(self.stores, self.celery, self.registry, self.topology)
        #: Queue depths.
        self.queues = Queues(self.stores, self.topology, self.celery)
        #: Live workers.
        self.workers = Workers(self.stores, self.topology)
        #: Declared schedules and their state: status, pause, resume, run now.
        self.schedules = Schedules(
            self.registry,
            self.topology,
            lambda: self.stores.schedules,
            lambda: self.stores.records,
            self.producer.enqueue_id,
            self.queue_for,
        )
        self.schedules.late = self._declare_beat_schedule  # the team's Celery beat_schedule

    def __repr__(self) -> str:
        return f"Taskplane({self.name!r})"

    # -- configuration ----------------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        """The Redis URL in use (starting the embedded server the first time, when none is configured);
        :attr:`on_server` hears which server it is, once."""
        if self._redis_url is None:
            self._redis_url, self.embedded = choose_server(self.settings, self.on_server)
        return self._redis_url

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

    def queue_for(self, name: str, args: Any = (), kwargs: Any = None) -> str:
        """The queue a call of task ``name`` goes to: the task's declared queue, else the team's Celery
        ``task_routes``, else the default queue (``task_default_queue``, or ``normal``).

        Raises:
            ConfigurationError: a route naming no queue, or a queue taskplane does not know.
        """
        return self.celery.routing.queue_for(name, args, kwargs)

    # -- tasks -----------------------------------------------------------------------------------

    @overload
    def task(self, fn: Callable[..., Any], **options: Any) -> TaskplaneTask: ...

    @overload
    def task(self, fn: None = None, **options: Any) -> Callable[[Callable[..., Any]], TaskplaneTask]: ...

    def task(
        self, fn: Callable[..., Any] | None = None, **options: Any
    ) -> TaskplaneTask | Callable[[Callable[..., Any]], TaskplaneTask]:
        """Declare a task: ``@tp.task`` or ``@tp.task(queue=..., retry=Retry(...), rate_limit="30/m", ...)``.

        Options: name, queue, bind, and those of the installed middleware: retry, rate_limit (str or
        RateLimit), time_limit, soft_time_limit, unique_for (seconds), unique_key (callable of the arguments).
        Celery's task options are accepted too (``max_retries``, ``autoretry_for``, ``retry_backoff``,
        ``priority``, ``ignore_result``, ``expires``...; see :mod:`taskplane.core.celery_options`).

        Raises:
            ConfigurationError: an unknown option (the message names the valid ones), a Celery option that
                makes no sense here (the message says what to write instead) or a bad value.
        """

        def register(func: Callable[..., Any]) -> TaskplaneTask:
            try:
                ours, celery_options = translate_celery_options(options)
                check_option_names(ours, self.chain.option_names)
                return self._register(func, celery_options, **ours)
            except ConfigurationError as exc:  # one line naming the task, whichever check refused
                raise ConfigurationError(f"task {task_name(func, options)}: {exc}") from None

        return register(fn) if fn is not None else register

    def _register(self, func: Callable[..., Any], celery_options: dict[str, Any], **options: Any) -> TaskplaneTask:
        core = core_task_options(func, options, self.topology)
        behaviour = {key: value for key, value in options.items() if key not in core}
        queue = core.pop("queue")  # routing reads the registry (Celery 5.7 deprecates the task attribute)
        task_options = {**celery_options, **core, **self.chain.task_options(core["name"], behaviour)}
        if "base" in task_options:  # the team's task class, over taskplane's
            task_options["base"] = task_base(task_options["base"], self.celery.Task)
        # shared=False: Celery would otherwise give this task to every app created later in the process.
        task: Any = self.celery.declared_task(func, **{**task_options, "shared": False})
        checked = task_options.get("typing") is not False
        self.registry.add(core["name"], queue, func, task, bound=core["bind"], checked=checked)
        return task  # type: ignore[no-any-return]

    def task_names(self) -> list[str]:
        """Names of the tasks declared through this app (``@shared_task`` ones of the modules imported so far
        included)."""
        self.declare_shared_tasks()
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

    def scheduler(
        self,
        owner: str | None = None,
        lease_ttl: float | None = None,
        tick: float | None = None,
        grace: float | None = None,
    ) -> Scheduler:
        """A scheduler for this app's schedules (``taskplane scheduler`` runs one): call ``run(stop_event)``."""
        return Scheduler(
            self.schedules,
            lambda: self.stores.schedules,
            self.producer.enqueue_id,
            self.settings,
            owner=owner,
            lease_ttl=lease_ttl,
            tick=tick,
            grace=grace,
        )

    # -- Redis -----------------------------------------------------------------------------------

    def metrics_registry(self) -> CollectorRegistry:
        """A Prometheus registry whose scrape reads this app's cluster-wide metrics from Redis."""
        return registry_for(TaskplaneCollector(self.stores, self.topology, self.schedules.names))

    def ping(self) -> None:
        """Check that Redis answers and is a server taskplane can use (:func:`taskplane.redis.client.check_server`).

        Raises:
            RedisUnavailableError: it does not answer, or is a replica, a cluster node or a Sentinel.
        """
        check_server(self.storage.client, self.redis_url)
