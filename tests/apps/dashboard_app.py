"""The app the dashboard's browser tests drive: a task with progress, one that fails until fixed, a schedule."""

from __future__ import annotations

import time

from taskplane import Taskplane, progress

tp = Taskplane("dashboard-tests", queues={"reports": "low"})
FIXED = "test:dashboard:fixed"


@tp.task(name="d.crunch")
def crunch(steps: int, pause: float) -> int:
    """Reports progress step by step (the task page's progress bar follows it)."""
    for index in range(1, steps + 1):
        time.sleep(pause)
        progress(index, steps, step=f"step {index}", message="crunching")
    return steps


@tp.task(name="d.sync")
def sync(account: str) -> str:
    """Fails (no retry: straight to the dead letters) until the test marks it fixed."""
    if tp.storage.client.get(FIXED) != "yes":
        raise RuntimeError(f"upstream refused {account}")
    return f"synced {account}"


@tp.task(name="d.report", queue="reports")
def report(name: str) -> str:
    return name


tp.periodic(report, every=3600, args=["hourly"], name="hourly-report")
