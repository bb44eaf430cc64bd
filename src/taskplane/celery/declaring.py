"""Tasks declared the Celery way (``@app.task``, ``@tp.celery.task``, ``@shared_task``) become taskplane tasks:
the declaration goes through ``Taskplane.task``, so such a task has taskplane's task class, its record,
policies and argument checks, and can be queued by name from the CLI and the HTTP API. Celery's own
built-in tasks (``celery.*``) stay Celery's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery

from taskplane.compat import declared_tasks

#: Celery's decorator options that say how Celery binds a task to apps; taskplane tasks belong to one app.
BINDING_OPTIONS = ("shared", "lazy", "filter")


class CeleryWayDeclarations(Celery):
    """The ``task`` decorator and the shared-task hook of taskplane's Celery app."""

    #: Declares a task on the taskplane app (``Taskplane.task``); set by the Taskplane that owns this app.
    declare: Callable[..., Any] | None = None

    def task(self, *args: Any, **opts: Any) -> Any:
        """``@app.task`` / ``@app.task(...)``: declared on the taskplane app (Celery's ``celery.*`` tasks
        are left to Celery)."""
        if self.declare is None or str(opts.get("name") or "").startswith("celery."):
            return super().task(*args, **opts)
        declare = self.declare
        options = {key: value for key, value in opts.items() if key not in BINDING_OPTIONS}

        def declared(fun: Callable[..., Any]) -> Any:
            options.setdefault("name", self.gen_task_name(fun.__name__, fun.__module__))
            return declare(fun, **options)

        if len(args) == 1 and callable(args[0]):
            return declared(args[0])
        return declared

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: Functions the taskplane app declared: Celery makes their tasks as it is.
        self._taskplane_functions: set[Any] = set()
        super().__init__(*args, **kwargs)

    def declared_task(self, fun: Callable[..., Any], **options: Any) -> Any:
        """The Celery task of a task the taskplane app declared (Celery's decorator, lazily bound)."""
        self._taskplane_functions.add(fun)
        return super().task(**options)(fun)

    def _task_from_fun(self, fun: Callable[..., Any], name: str | None = None, **options: Any) -> Any:  # type: ignore[override]
        """Celery makes every task here, also ``@shared_task`` ones when the app is finalized: a function
        taskplane did not declare yet is declared first."""
        name = name or self.gen_task_name(fun.__name__, fun.__module__)
        if self.declare is None or fun in self._taskplane_functions or name.startswith("celery."):
            return super()._task_from_fun(fun, name=name, **options)
        known: Any = declared_tasks(self)
        if name in known:
            return known[name]
        options = {key: value for key, value in options.items() if key not in BINDING_OPTIONS}
        return self.declare(fun, name=name, **options)
