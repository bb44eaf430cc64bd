"""Tasks as a team writes them for plain Celery: ``@app.task`` with Celery's options, ``@shared_task``,
``self.update_state``, ``self.retry``. Nothing here changed for taskplane (docs/migration.md)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from celery import shared_task

from tests.apps.celery_style.celery_app import app

EVENTS = "test:celery-style:events"


def note(kind: str, **fields: Any) -> None:
    """Append an event to a Redis list the tests read (through the app's broker connection)."""
    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        client = channel.client
        client.rpush(EVENTS, json.dumps({"kind": kind, "at": time.time(), "pid": os.getpid(), **fields}))


@app.task(
    bind=True,
    max_retries=2,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    retry_backoff_max=1,
    retry_jitter=False,
)
def fetch_feed(self: Any, url: str) -> str:
    """Always fails to connect: retried twice with backoff, then dead-lettered."""
    note("fetch_feed", url=url, retries=self.request.retries, priority=self.request.delivery_info.get("priority"))
    raise ConnectionError(f"cannot reach {url}")


@app.task(bind=True, default_retry_delay=0.2, max_retries=3)
def flaky(self: Any, succeed_on: int) -> int:
    """Fails until its ``succeed_on``-th retry, retrying itself with ``self.retry``."""
    note("flaky", retries=self.request.retries, priority=self.request.delivery_info.get("priority"))
    if self.request.retries < succeed_on:
        raise self.retry(exc=ValueError(f"not yet ({self.request.retries})"))
    return int(self.request.retries)


@app.task(bind=True)
def crunch(self: Any, steps: int, pause: float = 0.2) -> dict[str, Any]:
    """Reports PROGRESS the Celery way, as a FastAPI status endpoint reads it (``AsyncResult(id).info``)."""
    for step in range(steps):
        self.update_state(
            state="PROGRESS",
            meta={
                "progress": int(100 * step / steps),
                "current_step": f"step {step}",
                "message": "crunching",
                "rows": step,
            },
        )
        time.sleep(pause)
    return {"steps": steps}


@app.task(queue="reports", priority=5)
def report(tag: str) -> str:
    """Notes that it ran (the order of runs shows the priority order)."""
    note("report", tag=tag)
    return tag


@app.task(bind=True)
def sleepy(self: Any, seconds: float) -> str:
    """Sleeps (a task to revoke while it waits or runs)."""
    note("sleepy", task_id=self.request.id)
    time.sleep(seconds)
    return "slept"


@shared_task(rate_limit="20/s", ignore_result=False)
def notify(user_id: int) -> int:
    """Declared with ``@shared_task``, as reusable apps do."""
    note("notify", user_id=user_id)
    return user_id


@app.task(bind=True)
def replaced(self: Any, depth: int) -> int:
    """Replaces itself ``depth`` times (Celery's ``self.replace``: each replacement keeps the task id)."""
    if depth > 0:
        raise self.replace(replaced.s(depth - 1))
    return int(self.request.get("replaced_task_nesting") or 0)
