"""A team's Celery ``beat_schedule`` runs on taskplane's HA scheduler: each kind of entry becomes a schedule,
``taskplane scheduler`` fires them, and ``celery beat`` runs the same scheduler, so two of them (or one beside
``taskplane scheduler``) never fire a slot twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from celery.schedules import solar

from taskplane import ConfigurationError, Taskplane
from tests.apps.beat_app import RUNS, tp
from tests.workers import StartWorker, wait_for


def test_every_kind_of_entry_becomes_a_schedule() -> None:
    schedules = {schedule.name: schedule for schedule in tp.schedules}
    assert sorted(schedules) == ["every-second", "every-three", "every-two", "hourly", "nightly", "weekdays"]
    assert schedules["every-second"].every == 1.0 and schedules["every-second"].args == ("float",)
    assert schedules["every-two"].every == 2.0
    assert schedules["every-three"].every == 3.0 and schedules["every-three"].kwargs == {"label": "schedule"}
    nightly = schedules["nightly"]
    assert (nightly.cron, nightly.tz, nightly.queue) == ("0 2 * * *", "Europe/Berlin", "low")
    assert schedules["weekdays"].cron == "0,15,30,45 9,10,11,12,13,14,15,16,17 * * 1,2,3,4,5"
    assert schedules["hourly"].every == 3600.0 and schedules["hourly"].args == ("hourly",)  # add_periodic_task


def app_with(entry: dict[str, Any]) -> Taskplane:
    fresh = Taskplane("beat-bad", redis_url="redis://127.0.0.1:1/0")

    @fresh.task(name="b.x")
    def x() -> None: ...

    fresh.celery.conf.beat_schedule = {"bad one": {"task": "b.x", **entry}}
    return fresh


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        # (made without its ephem dependency: only its kind matters)
        ({"schedule": solar.__new__(solar)}, "beat_schedule['bad one']: solar schedules are not supported"),
        ({"schedule": 60, "relative": True}, "relative=True is not supported"),
        ({"schedule": 60, "options": {"expires": 30}}, "options ['expires'] are not supported"),
        ({"schedule": "every minute"}, "a schedule of type str is not supported"),
    ],
)
def test_an_entry_taskplane_cannot_run_as_celery_would_is_refused_in_one_line(entry: dict[str, Any], says: str) -> None:
    fresh = app_with(entry)
    with pytest.raises(ConfigurationError) as caught:
        fresh.schedules.names()
    assert says in str(caught.value) and "\n" not in str(caught.value)


def start(repo_root: Path, redis_url: str, log: Path, *argv: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TASKPLANE_REDIS_URL": redis_url, "TASKPLANE_SCHEDULER_TICK": "0.2"}
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", *argv],
            cwd=repo_root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_taskplane_scheduler_and_two_celery_beats_fire_each_slot_once(
    redis_url: str, repo_root: Path, tmp_path: Path, start_worker: StartWorker
) -> None:
    # Given a worker, taskplane's scheduler and two `celery beat` processes on the team's unchanged app
    start_worker(app="tests.apps.beat_app:tp", concurrency=2)
    schedulers = [
        start(
            repo_root, redis_url, tmp_path / "scheduler.log", "taskplane", "scheduler", "-A", "tests.apps.beat_app:tp"
        ),
        *(
            start(
                repo_root,
                redis_url,
                tmp_path / f"beat{n}.log",
                "celery",
                "-A",
                "tests.apps.beat_app",
                "beat",
                "--loglevel",
                "INFO",
                "-s",
                str(tmp_path / f"beat{n}.db"),
            )
            for n in (1, 2)
        ),
    ]
    try:
        wait_for(lambda: len(tp.schedules.fires("every-second")) >= 4, 60, "four slots of 'every second' fired")
        time.sleep(1.5)
    finally:
        for process in schedulers:
            stop(process)
    # Then every slot fired once, by one leader, and the tasks ran once each
    fires = [entry for entry in tp.schedules.fires("every-second") if entry["kind"] in ("fire", "late")]
    slots = Counter(entry["slot_ms"] for entry in fires)
    assert slots and max(slots.values()) == 1, slots
    wait_for(lambda: len([r for r in runs() if r["label"] == "float"]) >= len(fires), 20, "the fired tasks to run")
    ran = Counter(run["task_id"] for run in runs() if run["label"] == "float")
    assert max(ran.values()) == 1 and len(ran) == len(fires)
    beat_log = (tmp_path / "beat1.log").read_text() + (tmp_path / "beat2.log").read_text()
    assert "taskplane HA scheduler" in beat_log, beat_log[-2000:]


def runs() -> list[dict[str, Any]]:
    return [json.loads(item) for item in tp.storage.client.lrange(RUNS, 0, -1)]
