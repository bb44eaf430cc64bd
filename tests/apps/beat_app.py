"""A team's Celery beat schedule, unchanged: ``beat_schedule`` entries of every kind taskplane runs, and one
added by ``app.add_periodic_task`` when the app configures."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from typing import Any

from celery.schedules import crontab, schedule

from taskplane import Taskplane

tp = Taskplane("beat-tests")
app = tp.celery
RUNS = "test:beat-runs"

app.conf.update(timezone="Europe/Berlin")
app.conf.beat_schedule = {
    "every second": {"task": "b.tick", "schedule": 1.0, "args": ("float",)},
    "every-two": {"task": "b.tick", "schedule": timedelta(seconds=2), "args": ("timedelta",)},
    "every-three": {"task": "b.tick", "schedule": schedule(run_every=3), "kwargs": {"label": "schedule"}},
    "nightly": {
        "task": "b.tick",
        "schedule": crontab(minute=0, hour=2),
        "args": ("cron",),
        "options": {"queue": "low"},
    },
    "weekdays": {
        "task": "b.tick",
        "schedule": crontab(minute="*/15", hour="9-17", day_of_week="mon-fri"),
        "args": ("w",),
    },
}


@app.on_after_configure.connect
def add_more(sender: Any, **kwargs: Any) -> None:
    sender.add_periodic_task(3600.0, tick.s("hourly"), name="hourly")


@app.task(name="b.tick")
def tick(label: str) -> str:
    """Note each execution in a Redis list the test reads."""
    from celery import current_task

    run = {"task_id": current_task.request.id, "label": label, "at": time.time(), "pid": os.getpid()}
    tp.storage.client.rpush(RUNS, json.dumps(run))
    return label
