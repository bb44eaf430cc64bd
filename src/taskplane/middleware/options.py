"""``@tp.task(...)`` options: checked where they are declared, turned into Celery task options."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from taskplane.core.errors import ConfigurationError
from taskplane.core.policies import RateLimit, Retry
from taskplane.core.topology import Topology

TASK_OPTIONS = (
    "name",
    "queue",
    "retry",
    "rate_limit",
    "time_limit",
    "soft_time_limit",
    "unique_for",
    "unique_key",
    "bind",
)


def check_option_names(options: Mapping[str, Any]) -> None:
    """Refuse options taskplane does not know.

    Raises:
        ConfigurationError: names the unknown option, the closest valid one, and all valid ones.
    """
    for option in options:
        if option not in TASK_OPTIONS:
            close = difflib.get_close_matches(option, TASK_OPTIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigurationError(f"unknown task option {option!r}{hint}; valid options: {', '.join(TASK_OPTIONS)}")


def celery_task_options(
    func: Callable[..., Any], options: Mapping[str, Any], topology: Topology, default_soft_limit: float
) -> dict[str, Any]:
    """Validated options for ``celery.task(...)`` with taskplane's policies attached.

    Raises:
        ConfigurationError: a bad value (unknown queue, wrong policy type, non-positive limit...).
    """
    name = options.get("name") or f"{func.__module__}.{func.__qualname__}"
    queue = options.get("queue") or "normal"
    topology.get(queue)
    retry = options.get("retry")
    if retry is not None and not isinstance(retry, Retry):
        raise ConfigurationError(f"task {name}: retry must be a Retry(...), not {retry!r}")
    rate = options.get("rate_limit")
    if isinstance(rate, str):
        rate = RateLimit(rate)
    elif rate is not None and not isinstance(rate, RateLimit):
        raise ConfigurationError(f"task {name}: rate_limit must be like '30/m' or a RateLimit(...)")
    unique_for = options.get("unique_for")
    if unique_for is not None and unique_for <= 0:
        raise ConfigurationError(f"task {name}: unique_for must be a positive number of seconds")
    soft, hard = options.get("soft_time_limit"), options.get("time_limit")
    for limit, value in (("soft_time_limit", soft), ("time_limit", hard)):
        if value is not None and value <= 0:
            raise ConfigurationError(f"task {name}: {limit} must be positive")
    if soft is not None and hard is not None and soft > hard:
        raise ConfigurationError(f"task {name}: soft_time_limit ({soft}) must not exceed time_limit ({hard})")
    if hard is not None and soft is None and hard < default_soft_limit:
        soft = hard  # the app-wide soft default would otherwise come after the hard limit
    celery_options: dict[str, Any] = {
        "name": name,
        "bind": bool(options.get("bind", False)),
        "queue": queue,
        "taskplane_retry": retry,
        "taskplane_rate_limit": rate,
        "taskplane_unique_for": unique_for,
        "taskplane_unique_key": options.get("unique_key"),
    }
    if hard is not None:
        celery_options["time_limit"] = hard
    if soft is not None:
        celery_options["soft_time_limit"] = soft
    return celery_options
