"""The tasks declared on one app: names, queues and functions, known without evaluating Celery's tasks."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from taskplane.core.errors import TaskArgumentsError, UnknownTaskError


class TaskRegistry:
    """What ``Taskplane.task`` declared. Looking a task up here never touches Celery's lazy task proxy,
    which would configure the app (and start the embedded server) the first time it is evaluated."""

    def __init__(self) -> None:
        self._queues: dict[str, str] = {}
        self._functions: dict[str, Any] = {}  # a function, or a _Bound one
        self._objects: dict[int, tuple[Any, str]] = {}  # id(declared task) -> (task, name)
        self._unchecked: set[str] = set()  # declared with typing=False
        #: Called once before a name is found unknown: tasks declared late (Celery's ``@shared_task``,
        #: declared when the Celery app is finalized) get their chance.
        self.on_miss: Callable[[], None] | None = None

    def add(
        self,
        name: str,
        queue: str | None,
        function: Callable[..., Any],
        task: Any,
        bound: bool = False,
        checked: bool = True,
    ) -> None:
        """Record a declared task: its name, the queue it was declared with (None: routed), its function
        (``bound``: its first parameter is the task itself, Celery's ``bind=True``, and no caller passes it;
        ``checked``: calls are checked against its signature, unless Celery's ``typing=False`` said not to) and
        the object returned to the user."""
        if queue is not None:
            self._queues[name] = queue
        self._functions[name] = _Bound(function) if bound else function
        if not checked:
            self._unchecked.add(name)
        self._objects[id(task)] = (task, name)

    def names(self) -> list[str]:
        """Declared task names, sorted."""
        return sorted(self._functions)

    def declared_queue(self, name: str) -> str | None:
        """The queue task ``name`` was declared with (None: none, or not declared here)."""
        return self._queues.get(name)

    def require(self, name: str) -> None:
        """Check that ``name`` is declared.

        Raises:
            UnknownTaskError: it is not (the message lists the known names).
        """
        if name not in self._functions and self.on_miss is not None:
            self.on_miss()
        if name not in self._functions:
            known = ", ".join(self.names()) or "none"
            raise UnknownTaskError(f"unknown task {name!r}; known tasks: {known}")

    def name_of(self, task: Any) -> str | None:
        """The name of a declared task, given the task object or its name."""
        known = self._objects.get(id(task))  # before isinstance(): that evaluates a lazy proxy
        if known is not None and known[0] is task:
            return known[1]
        if isinstance(task, str):
            return task
        name = getattr(task, "name", None)
        return name if isinstance(name, str) else None

    def check_arguments(self, name: str, args: Any, kwargs: Any) -> None:
        """Check a call against the task function's signature.

        Raises:
            UnknownTaskError: no such task.
            TaskArgumentsError: the arguments do not fit (one line naming the problem).
        """
        self.require(name)
        if name in self._unchecked:
            return
        function = self._functions[name]
        shape = _shape(function)
        if shape is not None and _fits(shape, args, kwargs):
            return
        signature = _signature(function)
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TaskArgumentsError(f"bad arguments for {name}{signature}: {exc}") from None


class _Bound:
    """A ``bind=True`` task function, whose callers pass every argument but the first (the task)."""

    __slots__ = ("function",)

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Bound) and other.function is self.function

    def __hash__(self) -> int:
        return hash(self.function)


@functools.lru_cache(maxsize=4096)
def _signature(function: Any) -> inspect.Signature:
    """The signature callers must fit (computed once: ``inspect.signature`` costs more than the bind)."""
    if isinstance(function, _Bound):
        signature = inspect.signature(function.function)
        return signature.replace(parameters=list(signature.parameters.values())[1:])
    return inspect.signature(function)


@functools.lru_cache(maxsize=4096)
def _shape(function: Any) -> tuple[tuple[str, ...], int] | None:
    """(parameter names, how many are required) of a function whose parameters are all plain
    positional-or-keyword ones with the defaults last; None for any other (its calls are bound)."""
    parameters = list(_signature(function).parameters.values())
    if any(parameter.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for parameter in parameters):
        return None
    required = sum(1 for parameter in parameters if parameter.default is inspect.Parameter.empty)
    if any(parameter.default is inspect.Parameter.empty for parameter in parameters[required:]):
        return None
    return tuple(parameter.name for parameter in parameters), required


def _fits(shape: tuple[tuple[str, ...], int], args: Any, kwargs: Any) -> bool:
    """True if a call fits a function of this shape (as ``Signature.bind`` would accept it)."""
    names, required = shape
    given = len(args)
    if given > len(names):
        return False
    if not kwargs:
        return given >= required
    rest = names[given:]
    return all(key in rest for key in kwargs) and all(name in kwargs for name in names[given:required])
