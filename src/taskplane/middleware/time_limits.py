"""Time limits: ``soft_time_limit`` raises inside the task; at ``time_limit`` the worker kills it and it is
dead-lettered (a task that ran out of time would only run out of time again)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskplane.core.errors import ConfigurationError
from taskplane.core.policies import seconds
from taskplane.core.protocol import DeadReason
from taskplane.middleware.base import Middleware, Run
from taskplane.middleware.failure import FailurePath


class TimeLimits(Middleware):
    """Checks the limits where they are declared and dead-letters a task its hard limit killed."""

    options = ("time_limit", "soft_time_limit")

    def __init__(self, failure: FailurePath, default_soft_limit: float) -> None:
        self._failure = failure
        self._default_soft_limit = default_soft_limit

    def task_options(self, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Celery's ``time_limit`` and ``soft_time_limit``.

        Raises:
            ConfigurationError: a limit that is not positive, or a soft limit above the hard one.
        """
        soft, hard = options.get("soft_time_limit"), options.get("time_limit")
        soft = None if soft is None else seconds("soft_time_limit", soft)
        hard = None if hard is None else seconds("time_limit", hard)
        if soft is not None and hard is not None and soft > hard:
            raise ConfigurationError(f"soft_time_limit ({soft}) must not exceed time_limit ({hard})")
        if hard is not None and soft is None and hard < self._default_soft_limit:
            soft = hard  # the app-wide soft default would otherwise come after the hard limit
        attributes: dict[str, Any] = {}
        if hard is not None:
            attributes["time_limit"] = hard
        if soft is not None:
            attributes["soft_time_limit"] = soft
        return attributes

    def on_time_limit(self, run: Run, timeout: float) -> None:
        """Dead-letter the killed task."""
        self._failure.bury_run(
            DeadReason.TIME_LIMIT,
            run,
            exception_type="TimeLimitExceeded",
            message=f"hard time limit ({timeout}s) exceeded",
        )
