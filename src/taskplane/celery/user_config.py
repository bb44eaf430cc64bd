"""A team's own Celery routing settings (``task_queues``, ``task_routes``) next to taskplane's topology: kept
when they name only declared queues, refused in one line that says what to write otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from taskplane.core.errors import ConfigurationError
from taskplane.core.topology import Topology

if TYPE_CHECKING:
    from taskplane.celery.app import TaskplaneCelery


class CeleryCompat:
    """What ``Taskplane`` adds for apps coming from Celery: their shared tasks and routing settings."""

    celery: TaskplaneCelery
    topology: Topology
    _own_routing: dict[str, Any] | None = None

    def remember_routing(self, config: Mapping[str, Any]) -> None:
        """Note taskplane's own ``task_queues`` and ``task_routes`` (to tell the user's apart later)."""
        self._own_routing = {"task_queues": config["task_queues"], "task_routes": config["task_routes"]}

    def declare_shared_tasks(self) -> None:
        """Declare the ``@shared_task`` tasks of the modules imported so far (Celery attaches them to an app
        when it is finalized; this finalizes the Celery app, which configures it)."""
        self.celery.finalize(auto=True)

    def check_celery_config(self) -> None:
        """Check the Celery settings the user set on ``tp.celery.conf`` (``task_queues``, ``task_routes``)
        against the declared queues (``taskplane worker`` does before it starts).

        Raises:
            ConfigurationError: a queue taskplane does not know (the message says how to declare it).
        """
        conf = self.celery.conf
        conf.task_queues  # noqa: B018 - reading a setting configures the app (and records taskplane's own)
        check_user_routing(conf, self.topology, self._own_routing or {})


def check_user_routing(conf: Any, topology: Topology, ours: Mapping[str, Any]) -> None:
    """Check ``task_queues`` and ``task_routes`` the user set on the Celery app against the topology; user
    ``task_queues`` naming only declared queues are replaced by taskplane's (same queues, with tiers).

    Raises:
        ConfigurationError: a queue taskplane does not know (the message says how to declare it).
    """
    known = set(topology.names())
    queues = conf.task_queues
    if queues is not None and queues is not ours.get("task_queues"):
        names = [
            getattr(queue, "name", queue) for queue in (queues.values() if isinstance(queues, Mapping) else queues)
        ]
        _refuse_unknown("task_queues", [str(name) for name in names], known)
        conf.task_queues = ours.get("task_queues")
    routes = conf.task_routes
    if routes is not None and routes is not ours.get("task_routes"):
        for router in routes if isinstance(routes, (list, tuple)) else [routes]:
            if isinstance(router, Mapping):
                targets = [route.get("queue") if isinstance(route, Mapping) else route for route in router.values()]
                _refuse_unknown("task_routes", [str(t) for t in targets if t is not None], known)


def _refuse_unknown(setting: str, names: list[str], known: set[str]) -> None:
    unknown = sorted(set(names) - known)
    if unknown:
        example = ", ".join(f"{name!r}: 'normal'" for name in unknown)
        raise ConfigurationError(
            f"{setting} names queue(s) taskplane does not know ({', '.join(unknown)}): declare them by tier with "
            f"Taskplane(queues={{{example}}}) and remove {setting} (taskplane builds it from its queues)"
        )
