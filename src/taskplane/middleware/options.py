"""``@tp.task(...)`` options: the core ones, and the check that every option is known to someone."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from taskplane.core.errors import ConfigurationError
from taskplane.core.topology import Topology

#: Options every task has, whatever middleware is installed.
CORE_OPTIONS = ("name", "queue", "bind")


def check_option_names(options: Mapping[str, Any], valid: tuple[str, ...]) -> None:
    """Refuse options no installed middleware owns.

    Raises:
        ConfigurationError: names the unknown option, the closest valid one, and all valid ones.
    """
    for option in options:
        if option not in valid:
            close = difflib.get_close_matches(option, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigurationError(f"unknown task option {option!r}{hint}; valid options: {', '.join(valid)}")


def task_name(func: Callable[..., Any], options: Mapping[str, Any]) -> str:
    """The name a task declared with these options gets: ``name=``, else ``module.qualname``."""
    name = options.get("name")
    return name if isinstance(name, str) and name else f"{func.__module__}.{func.__qualname__}"


def core_task_options(func: Callable[..., Any], options: Mapping[str, Any], topology: Topology) -> dict[str, Any]:
    """The task's name, declared queue (None: routed) and ``bind`` flag.

    Raises:
        ConfigurationError: a name that is not a string, or an unknown queue.
    """
    if options.get("name") is not None and not isinstance(options["name"], str):
        raise ConfigurationError(f"name={options['name']!r}: give a string")
    name = task_name(func, options)
    queue = options.get("queue")
    if queue is not None:
        queue = str(getattr(queue, "name", queue))
        topology.get(queue)
    return {"name": name, "bind": bool(options.get("bind", False)), "queue": queue}
