"""A team's own Celery configuration under taskplane (``app.conf.update``, ``config_from_object``): each
setting it sets is honoured, mapped to taskplane's own mechanism, or refused in one line, as
:mod:`taskplane.celery.settings_table` classifies it. Read once, when the app configures (before taskplane's
defaults are added, so the team's own sources can be told apart)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from celery.app.defaults import NAMESPACES, flatten
from kombu import Queue

from taskplane.celery.beat import beat_entries
from taskplane.celery.config import celery_config
from taskplane.celery.settings_table import rule_for
from taskplane.compat import pending_config
from taskplane.core.errors import ConfigurationError
from taskplane.core.protocol import TransportOption
from taskplane.core.settings import Settings
from taskplane.core.topology import Topology
from taskplane.redis.client import with_tls_verification

if TYPE_CHECKING:
    from taskplane.celery.app import TaskplaneCelery

#: Every Celery setting of the installed Celery.
CELERY_SETTINGS = frozenset(str(item[0]) for item in flatten(NAMESPACES))
#: Transport options taskplane owns, with the taskplane setting to use instead.
OWNED_TRANSPORT_OPTIONS = {
    "visibility_timeout": "TASKPLANE_LEASE_TIMEOUT",
    "global_keyprefix": "TASKPLANE_KEY_PREFIX",
    "queue_order_strategy": "Taskplane(queues={...}) tiers",
    "priority_steps": "priority=0..9 (always)",
    "fanout_prefix": "TASKPLANE_KEY_PREFIX",
    "unacked_key": "TASKPLANE_KEY_PREFIX",
    "unacked_index_key": "TASKPLANE_KEY_PREFIX",
    "unacked_mutex_key": "TASKPLANE_KEY_PREFIX",
    "sep": "TASKPLANE_KEY_PREFIX",
    **{option.value: "taskplane's own setting" for option in TransportOption},
}
#: Celery settings that declare queues (taskplane's own config is built once they are declared).
QUEUE_SETTINGS = ("task_queues", "task_default_queue")


def team_settings(conf: Any) -> dict[str, Any]:
    """The Celery settings the team set (``app.conf`` changes, ``config_from_object``), read while the app
    configures: every map of Celery's settings but the last (Celery's own defaults) is the team's then."""
    sources = list(conf.maps)[:-1]
    return {name: conf[name] for name in CELERY_SETTINGS if any(name in source for source in sources)}


@dataclass
class Adoption:
    """What taskplane does with a team's Celery settings: the defaults to drop (the team's value stands),
    the values to set instead of taskplane's, and the first refusal (None: all accepted)."""

    drop: set[str] = field(default_factory=set)
    config: dict[str, Any] = field(default_factory=dict)
    error: ConfigurationError | None = None
    #: taskplane's own Celery config, as built once the team's queues were declared.
    ours: dict[str, Any] = field(default_factory=dict)


def adopt(team: Mapping[str, Any], build: Callable[[], dict[str, Any]], topology: Topology) -> Adoption:
    """Classify each of the team's settings against taskplane's own Celery config (``build()``, called once
    the queues the team names, ``task_queues`` and ``task_default_queue``, are declared in ``topology``: tier
    normal unless declared). Routes, schedules and worker defaults are read from the settings later, where
    they are used."""
    adoption = Adoption()
    for name in QUEUE_SETTINGS:
        if name in team:
            try:
                for queue in _queues_named(team[name]):
                    declare_team_queue(topology, queue)
            except ConfigurationError as exc:
                adoption.error = adoption.error or exc
    ours = adoption.ours = build()
    if "task_queues" in team:
        adoption.config["task_queues"] = ours["task_queues"]  # the same queues, with their tiers, over theirs
    if "task_default_queue" in team:
        adoption.drop.add("task_default_queue")  # theirs stands: it is declared now
    prefix = str(ours["broker_transport_options"][TransportOption.PREFIX.value])
    for name in sorted(set(team) - set(QUEUE_SETTINGS)):
        value = team[name]
        rule = rule_for(name)
        try:
            if rule is None or rule.handling == "honoured":
                adoption.drop.add(name)
            elif rule.handling == "refused":
                raise ConfigurationError(f"Celery setting {name} is not used by taskplane: {rule.note}")
            elif rule.handling == "taskplane":
                if not _same(name, value, ours.get(name)):
                    raise ConfigurationError(f"Celery setting {name}={_short(value)} is not supported: {rule.note}")
            else:
                _map(name, value, ours, prefix, adoption)
        except ConfigurationError as exc:
            adoption.error = adoption.error or exc
    return adoption


def _queues_named(value: Any) -> list[Any]:
    """The queues a ``task_queues`` value (a list, a tuple or a dict of them) or a ``task_default_queue`` names."""
    if isinstance(value, (str, Queue)):
        return [value]
    return list(value.values() if isinstance(value, Mapping) else value or ())


def _map(name: str, value: Any, ours: Mapping[str, Any], prefix: str, adoption: Adoption) -> None:
    if name in ("control_exchange", "event_exchange"):
        adoption.config[name] = value if str(value).startswith(prefix) else f"{prefix}{value}"
    elif name in ("broker_transport_options", "result_backend_transport_options"):
        adoption.config[name] = _merged_options(name, dict(value or {}), dict(ours.get(name) or {}))
    else:  # task_routes, beat_schedule, worker defaults: read where they are used (routing, scheduler, worker)
        adoption.drop.add(name)


def declare_team_queue(topology: Topology, queue: Any) -> None:
    """Declare a queue the team's Celery settings name (a name or a kombu Queue) in ``topology``, at tier normal
    unless it is declared already.

    Raises:
        ConfigurationError: a queue bound to an exchange of another type than direct (taskplane routes by
            queue: give task_routes instead), or a bad name.
    """
    name = queue.name if isinstance(queue, Queue) else str(queue)
    exchange = getattr(queue, "exchange", None)
    if exchange is not None and exchange.type not in ("direct", "", None):
        raise ConfigurationError(
            f"task_queues: queue {name!r} is bound to a {exchange.type} exchange; taskplane routes by queue: "
            "give task_routes instead"
        )
    if name not in topology:
        topology.add_queue(name)


def _merged_options(setting: str, theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    for option, value in theirs.items():
        if option in ours and value != ours[option]:
            instead = OWNED_TRANSPORT_OPTIONS.get(option, "taskplane's value")
            raise ConfigurationError(f"{setting}[{option!r}]={_short(value)} is taskplane's: set {instead} instead")
    return {**theirs, **ours}


def _same(name: str, theirs: Any, ours: Any) -> bool:
    """True if the team's value of a setting taskplane owns means what taskplane's does."""
    if name in ("broker_url", "result_backend"):
        return _url(str(theirs)) == _url(str(ours))
    if name in ("accept_content", "result_accept_content"):
        kinds = {str(kind).removeprefix("application/") for kind in (theirs or ())}
        return kinds <= {"json"}
    if name in ("task_serializer", "result_serializer", "event_serializer"):
        return str(theirs).removeprefix("application/") == "json"
    if name == "worker_pool":
        return theirs in ("prefork", ours)
    if name == "beat_scheduler":
        return theirs in ("celery.beat:PersistentScheduler", ours)  # Celery's default, as configs spell it out
    return bool(theirs == ours)


def _url(url: str) -> str:
    return with_tls_verification(url.partition("+")[2] if "+" in url.partition("://")[0] else url)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Declaring(Protocol):
    """What the team's beat schedule needs of the app's schedules."""

    def names(self) -> list[str]:
        """Names of the declared schedules."""
        ...

    @property
    def declare(self) -> Callable[..., Any]:
        """Declares a schedule: ``declare(task, every=|cron=, tz=, args=, kwargs=, queue=, name=)``."""
        ...


class CeleryCompat:
    """What ``Taskplane`` adds for apps coming from Celery: their shared tasks, their Celery settings, their
    queues, routes and beat schedule."""

    celery: TaskplaneCelery
    settings: Settings
    topology: Topology
    schedules: Declaring  # taskplane.scheduler.registry.Schedules (a layer beside this one)
    _configured: bool

    if TYPE_CHECKING:

        @property
        def redis_url(self) -> str: ...

    def _celery_defaults(self) -> dict[str, Any]:
        """taskplane's Celery settings, with the team's own adopted (Celery calls this when it configures)."""
        self._configured = True
        celery = self.celery
        team = team_settings(celery.conf)
        adoption = adopt(team, lambda: celery_config(self.settings, self.topology, self.redis_url), self.topology)
        config = {key: value for key, value in adoption.ours.items() if key not in adoption.drop}
        try:
            celery.routing.adopt(team.get("task_routes"), team.get("task_default_queue"), celery)
        except ConfigurationError as exc:
            adoption.error = adoption.error or exc
        celery.team_settings = team
        celery.config_error = adoption.error
        if adoption.config:  # the team's own layer would shadow these defaults: they are set over it
            celery.conf.update(adoption.config)
        return config

    def _declare_beat_schedule(self, configure: bool) -> bool:
        """Declare the entries of the team's ``beat_schedule`` as schedules; True once all are (the app is
        configured: ``config_from_object`` and ``add_periodic_task`` entries are known then). Without
        ``configure`` an app not yet configured stays so: only entries set on ``app.conf`` are known.

        Raises:
            ConfigurationError: an entry taskplane cannot run (see :func:`taskplane.celery.beat.beat_entries`).
        """
        celery: Any = self.celery
        done = configure or celery.configured
        conf = celery.conf if done else pending_config(celery)
        declared = set(self.schedules.names())
        timezone = conf.get("timezone") or "UTC"
        for entry in beat_entries(conf.get("beat_schedule"), str(timezone)):
            if entry["name"] not in declared:  # declared with tp.periodic under the same name: that one stands
                self.schedules.declare(entry.pop("task"), **entry)
        return bool(done)

    def _queue_from_team_config(self, name: str) -> None:
        """A task names a queue taskplane does not know: declare it if the team's pending Celery settings
        (``task_queues``, ``task_default_queue``) name it (the app is not configured at declaration time)."""
        pending = pending_config(self.celery)
        for queue in pending.get("task_queues") or ():
            if getattr(queue, "name", queue) == name:
                declare_team_queue(self.topology, queue)
        if pending.get("task_default_queue") == name:
            declare_team_queue(self.topology, name)

    def queue_names(self) -> list[str]:
        """Every queue's name, highest tier first, those the team's Celery settings name included (reading a
        setting configures the app, which declares them)."""
        self.celery.conf.task_queues  # noqa: B018
        return self.topology.names()

    def declare_shared_tasks(self) -> None:
        """Declare the ``@shared_task`` tasks of the modules imported so far (Celery attaches them to an app
        when it is finalized; this finalizes the Celery app, which configures it)."""
        self.celery.finalize(auto=True)

    def check_celery_config(self) -> None:
        """Configure the app (if it was not yet) and raise the first of the team's Celery settings taskplane
        refused (``taskplane worker``, the scheduler and the API check before they start; an enqueue raises
        it too).

        Raises:
            ConfigurationError: one line naming the setting and what to write instead.
        """
        self.celery.conf.task_queues  # noqa: B018 - reading a setting configures the app
        if self.celery.config_error is not None:
            raise self.celery.config_error
