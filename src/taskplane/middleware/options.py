"""``@tp.task(...)`` options: the core ones, and the check that every option is known to someone."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from taskplane.core.errors import ConfigurationError
from taskplane.core.topology import DEFAULT_QUEUE, Topology

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


def core_task_options(func: Callable[..., Any], options: Mapping[str, Any], topology: Topology) -> dict[str, Any]:
    """The task's name, queue and ``bind`` flag as ``celery.task(...)`` options.

    Raises:
        ConfigurationError: an unknown queue.
    """
    name = options.get("name") or f"{func.__module__}.{func.__qualname__}"
    queue = options.get("queue") or DEFAULT_QUEUE
    topology.get(queue)
    return {"name": name, "bind": bool(options.get("bind", False)), "queue": queue}
