"""Schedules as values: slot times by interval and by cron in a time zone, and declaration errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from taskplane import ConfigurationError, TaskArgumentsError, Taskplane, UnknownTaskError
from taskplane.scheduler.schedule import Schedule


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def test_interval_slots_are_aligned_to_the_epoch() -> None:
    schedule = Schedule("s", "t", every=60)
    now = ms(datetime(2026, 11, 21, 10, 30, 45, tzinfo=UTC))
    assert schedule.slot_at_or_before(now) == ms(datetime(2026, 11, 21, 10, 30, tzinfo=UTC))
    assert schedule.slot_after(now) == ms(datetime(2026, 11, 21, 10, 31, tzinfo=UTC))
    on_slot = ms(datetime(2026, 11, 21, 10, 31, tzinfo=UTC))
    assert schedule.slot_at_or_before(on_slot) == on_slot
    assert schedule.slot_after(on_slot) == on_slot + 60_000


def test_cron_slots_follow_the_time_zone_and_include_the_exact_minute() -> None:
    schedule = Schedule("s", "t", cron="0 2 * * *", tz="Europe/Berlin")
    berlin = ZoneInfo("Europe/Berlin")
    two_am = ms(datetime(2026, 11, 21, 2, 0, tzinfo=berlin))
    assert schedule.slot_at_or_before(two_am) == two_am
    assert schedule.slot_at_or_before(two_am - 1) == ms(datetime(2026, 11, 20, 2, 0, tzinfo=berlin))
    assert schedule.slot_after(two_am) == ms(datetime(2026, 11, 22, 2, 0, tzinfo=berlin))
    # 02:00 in Berlin is 01:00 UTC in winter
    assert datetime.fromtimestamp(two_am / 1000, UTC).hour == 1


def test_weekly_cron_falls_on_sundays() -> None:
    schedule = Schedule("s", "t", cron="0 4 * * 0", tz="UTC")
    after = schedule.slot_after(ms(datetime(2026, 11, 21, 12, 0, tzinfo=UTC)))  # a Saturday
    assert datetime.fromtimestamp(after / 1000, UTC) == datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every": 60, "cron": "* * * * *"}, "exactly one of every= or cron="),
        ({}, "exactly one of every= or cron="),
        ({"every": 0.5}, "at least 1 second"),
        ({"cron": "61 * * * *"}, "not a valid cron expression"),
        ({"cron": "0 2 * * *", "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"every": 60, "missed": "twice"}, "missed must be"),
    ],
)
def test_bad_schedules_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Schedule("s", "t", **kwargs)


def test_periodic_checks_the_task_arguments_queue_and_name() -> None:
    tp = Taskplane("decl", redis_url="redis://127.0.0.1:1/0")

    @tp.task(name="d.job")
    def job(day: int) -> int:
        return day

    declared = tp.periodic(job, cron="0 2 * * *", args=[1])
    assert declared.name == "d.job" and declared.task == "d.job" and tp.schedules.names() == ["d.job"]
    with pytest.raises(ConfigurationError, match="exists already"):
        tp.periodic(job, every=60, args=[2])
    with pytest.raises(TaskArgumentsError, match=r"bad arguments for d\.job"):
        tp.periodic(job, every=60, name="no-args")
    with pytest.raises(UnknownTaskError, match=r"unknown task 'd\.nope'"):
        tp.periodic("d.nope", every=60)
    with pytest.raises(ConfigurationError, match="unknown queue"):
        tp.periodic(job, every=60, args=[1], name="q", queue="nowhere")
    with pytest.raises(ConfigurationError, match="bad schedule name"):
        tp.periodic(job, every=60, args=[1], name="has space")
