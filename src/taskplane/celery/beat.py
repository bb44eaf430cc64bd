"""A team's Celery beat schedule under taskplane's HA scheduler.

:func:`beat_entries` reads ``beat_schedule`` (and what ``app.add_periodic_task`` put there): seconds,
``timedelta`` and ``schedule(run_every=...)`` become ``every``, ``crontab(...)`` becomes a cron expression in
the app's time zone; ``solar`` and other kinds are refused in one line. :class:`Scheduler` is the app's
``beat_scheduler``: ``celery beat`` then runs taskplane's scheduler (one leader, a fenced lease) instead of
Celery's, so a team's ``celery beat`` process cannot fire a slot twice beside ``taskplane scheduler``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from celery import beat
from celery.schedules import crontab, schedule, solar

from taskplane.core.errors import ConfigurationError
from taskplane.redis.client import CONNECTION_ERRORS

#: Celery's ranges of the crontab fields, in cron's order: a full range is written ``*``.
_CRON_FIELDS = (
    ("minute", range(60)),
    ("hour", range(24)),
    ("day_of_month", range(1, 32)),
    ("month_of_year", range(1, 13)),
    ("day_of_week", range(7)),
)
#: Options of a beat entry taskplane's schedules take (the rest are refused).
_OPTIONS = ("queue",)
_NAME = re.compile(r"[^A-Za-z0-9_.:-]+")
log = logging.getLogger("taskplane.scheduler")


def beat_entries(beat_schedule: Mapping[str, Any] | None, timezone: str | None) -> list[dict[str, Any]]:
    """The keyword arguments of ``Taskplane.periodic`` for each entry of a Celery ``beat_schedule``.

    Raises:
        ConfigurationError: an entry taskplane cannot run as Celery would (solar, relative, an unknown kind
            of schedule or option), naming the entry.
    """
    found = []
    for key, entry in (beat_schedule or {}).items():
        where = f"beat_schedule[{key!r}]"
        timing = _timing(where, entry.get("schedule"), timezone or "UTC")
        if entry.get("relative"):
            raise ConfigurationError(f"{where}: relative=True is not supported: slots are aligned to the clock")
        options = dict(entry.get("options") or {})
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ConfigurationError(f"{where}: options {unknown} are not supported (only queue)")
        found.append(
            {
                "task": entry["task"],
                **timing,
                "args": list(entry.get("args") or ()),
                "kwargs": dict(entry.get("kwargs") or {}),
                "queue": getattr(options.get("queue"), "name", options.get("queue")),
                "name": _NAME.sub("-", str(key)).strip("-")[:128] or str(entry["task"]),
            }
        )
    return found


def _timing(where: str, when: Any, timezone: str) -> dict[str, Any]:
    if isinstance(when, solar):
        raise ConfigurationError(f"{where}: solar schedules are not supported: give a crontab or seconds")
    if isinstance(when, crontab):
        return {"cron": cron_expression(when), "tz": timezone}
    if isinstance(when, schedule):
        every: Any = when
        when = every.run_every
    if isinstance(when, timedelta):
        when = when.total_seconds()
    if isinstance(when, (int, float)) and not isinstance(when, bool):
        return {"every": float(when)}
    raise ConfigurationError(f"{where}: a schedule of type {type(when).__name__} is not supported")


def cron_expression(entry: crontab) -> str:
    """A crontab's five fields as a cron expression (its public, expanded sets; a full set is ``*``)."""
    fields = []
    for attribute, full in _CRON_FIELDS:
        values = sorted(getattr(entry, attribute))
        fields.append("*" if set(values) >= set(full) else ",".join(str(value) for value in values))
    return " ".join(fields)


class Scheduler(beat.Scheduler):
    """The app's ``beat_scheduler``: ``celery beat`` steps taskplane's HA scheduler (see the module)."""

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        runner = getattr(app, "make_scheduler", None)
        if runner is None:
            raise ConfigurationError("taskplane's beat scheduler needs a taskplane app (celery -A module:tp)")
        self._runner = runner()
        super().__init__(app, *args, **kwargs)

    def setup_schedule(self) -> None:
        """Nothing: the schedules are the app's (``tp.periodic`` and its Celery ``beat_schedule``)."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """One step of taskplane's scheduler (lead or stand by; as leader, fire what is due); the seconds
        until the next step."""
        try:
            self._runner.step()
        except CONNECTION_ERRORS as exc:
            log.warning("scheduler %s: Redis unreachable, not leading: %s", self._runner.owner, exc)
            self._runner.token = None
        return float(self._runner.tick)

    def sync(self) -> None:
        """Nothing to write: the schedules' state is in Redis."""

    def close(self) -> None:
        """Give the lease up so another scheduler leads at once."""
        self._runner.release()

    @property
    def info(self) -> str:
        """What ``celery beat`` prints about its scheduler."""
        return "taskplane HA scheduler (one leader, fenced lease)"
