"""Which queue a task goes to, the same whichever way it is enqueued (``enqueue``, ``delay``, ``send_task``,
the CLI, the HTTP API, a schedule): the queue given with the call, else the queue the task was declared
with, else the team's Celery ``task_routes`` (as Celery's router reads them: dicts with names, globs and
regular expressions, lists, router functions and router classes), else the default queue
(``task_default_queue``, or ``normal``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery.app.routes import Router, prepare

from taskplane.core.errors import ConfigurationError
from taskplane.core.registry import TaskRegistry
from taskplane.core.topology import DEFAULT_QUEUE, Topology


class Routing:
    """The queue of each call; the team's routes and default queue are adopted when the app is configured."""

    def __init__(self, registry: TaskRegistry, topology: Topology) -> None:
        self._registry = registry
        self._topology = topology
        self._router: Router | None = None
        #: The queue of a task with no queue of its own and no route.
        self.default_queue = DEFAULT_QUEUE

    def adopt(self, routes: Any, default_queue: str | None, app: Any) -> None:
        """Take the team's ``task_routes`` (Celery's forms) and ``task_default_queue``.

        Raises:
            ConfigurationError: a default queue or a route in a dict that names a queue taskplane does not know.
        """
        if default_queue:
            self._topology.get(default_queue)
            self.default_queue = default_queue
        prepared = prepare(routes)
        self._router = Router(routes=prepared, queues={}, app=app) if prepared else None
        for router in prepared:  # Celery's MapRoute (of a dict or a list of pairs): its queues are checked now
            static = [*getattr(router, "map", {}).values(), *getattr(router, "patterns", {}).values()]
            for route in static:
                queue = _queue_of(route)
                if queue is not None:
                    self._topology.get(queue)

    def queue_for(
        self, name: str, args: Any = (), kwargs: Any = None, options: Mapping[str, Any] | None = None, task: Any = None
    ) -> str:
        """The queue a call of task ``name`` goes to.

        Raises:
            ConfigurationError: a route that names no queue, or a queue taskplane does not know.
        """
        given = options.get("queue") if options else None
        if given:
            return str(getattr(given, "name", given))
        declared = self._registry.declared_queue(name)
        if declared is not None:
            return declared
        if self._router is not None:
            route = self._router.lookup_route(name, args, kwargs or {}, dict(options or {}), task)
            if route is not None:
                queue = _queue_of(route)
                if queue is None:
                    raise ConfigurationError(f"task_routes gives task {name} no queue ({route!r}): give one")
                self._topology.get(queue)
                return queue
        return self.default_queue


def _queue_of(route: Any) -> str | None:
    """The queue a Celery route names: a queue name, or a dict with ``queue`` (a name or a kombu Queue)."""
    if isinstance(route, str):
        return route
    if isinstance(route, Mapping):
        queue = route.get("queue")
        return None if queue is None else str(getattr(queue, "name", queue))
    return None
