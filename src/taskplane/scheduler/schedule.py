"""Periodic schedules as value objects: when each slot falls, by interval or by cron in a time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from taskplane.core.errors import ConfigurationError

Missed = Literal["run_once", "skip"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


@dataclass(frozen=True)
class Schedule:
    """One periodic task: a slot every ``every`` seconds (aligned to the Unix epoch) or at each ``cron`` time.

    ``missed`` says what happens to a slot that passed while no scheduler led: ``run_once`` fires it once,
    late (several missed slots collapse into one firing); ``skip`` leaves it and waits for the next slot.
    Times are whole milliseconds since the epoch.
    """

    name: str
    task: str
    every: float | None = None
    cron: str | None = None
    tz: str = "UTC"
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict, compare=False)
    queue: str | None = None
    missed: Missed = "run_once"

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigurationError(
                f"bad schedule name {self.name!r}: use letters, digits and _ . : - (up to 128 characters)"
            )
        if (self.every is None) == (self.cron is None):
            raise ConfigurationError(f"schedule {self.name!r}: give exactly one of every= or cron=")
        if self.every is not None and not self.every >= 1:
            raise ConfigurationError(f"schedule {self.name!r}: every={self.every!r} must be at least 1 second")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ConfigurationError(f"schedule {self.name!r}: {self.cron!r} is not a valid cron expression")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(f"schedule {self.name!r}: unknown time zone {self.tz!r}") from None
        if self.missed not in ("run_once", "skip"):
            raise ConfigurationError(f"schedule {self.name!r}: missed must be 'run_once' or 'skip': {self.missed!r}")

    @property
    def description(self) -> str:
        """``every 60s`` or ``cron 0 2 * * * (UTC)``."""
        if self.every is not None:
            return f"every {self.every:g}s"
        return f"cron {self.cron} ({self.tz})"

    def slot_at_or_before(self, now_ms: int) -> int:
        """The latest slot at or before ``now_ms``."""
        if self.every is not None:
            step = round(self.every * 1000)
            return now_ms // step * step
        # Cron slots fall on whole seconds, so "strictly before the next second" is "at or before now".
        start = datetime.fromtimestamp(now_ms // 1000 + 1, ZoneInfo(self.tz))
        return round(croniter(str(self.cron), start).get_prev(float) * 1000)

    def slot_after(self, after_ms: int) -> int:
        """The first slot strictly after ``after_ms``."""
        if self.every is not None:
            step = round(self.every * 1000)
            return (after_ms // step + 1) * step
        start = datetime.fromtimestamp(after_ms / 1000, ZoneInfo(self.tz))
        return round(croniter(str(self.cron), start).get_next(float) * 1000)
