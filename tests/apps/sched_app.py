"""Schedules the scheduler tests run with real scheduler and worker processes."""

from __future__ import annotations

import json
import os
import time

from taskplane import Taskplane

tp = Taskplane("sched-tests")

RUNS = "test:runs"


@tp.task(name="s.tick")
def tick(label: str) -> str:
    """Note each execution (task id, label) in a Redis list the test reads."""
    from celery import current_task

    run = {"task_id": current_task.request.id, "label": label, "at": time.time(), "pid": os.getpid()}
    tp.storage.client.rpush(RUNS, json.dumps(run))
    return label


tp.periodic(tick, every=1, args=["every-second"], name="every-second")
tp.periodic(tick, every=2, args=["skipper"], name="skipper", missed="skip")
tp.periodic(tick, cron="0 2 * * *", tz="Europe/Berlin", args=["nightly"], name="nightly", queue="low")
