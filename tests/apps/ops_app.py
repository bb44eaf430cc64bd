"""Tasks of the operations tests (metrics, logs, Flower), on queues of their own."""

from __future__ import annotations

import logging

from celery.utils.log import get_task_logger

from taskplane import RateLimit, Retry, Taskplane

tp = Taskplane("ops-tests", queues={"ops": "normal", "ops_backlog": "low"})
plain_log = logging.getLogger("tests.ops")
task_log = get_task_logger("tests.ops.task")


@tp.task(name="ops.add", queue="ops")
def add(a: int, b: int) -> int:
    return a + b


@tp.task(name="ops.boom", queue="ops")
def boom() -> None:
    raise ValueError("boom")


@tp.task(name="ops.flaky", queue="ops", retry=Retry(max_retries=3, backoff=(0.2,), jitter=False))
def flaky(key: str) -> str:
    """Fails twice, then succeeds (counts its attempts in Redis)."""
    if tp.storage.client.incr(key) < 3:
        raise ConnectionError("flaky")
    return "ok"


@tp.task(name="ops.limited", queue="ops", rate_limit=RateLimit("1/m"))
def limited(index: int) -> int:
    return index


@tp.task(name="ops.idle", queue="ops_backlog")
def idle() -> None:
    """Never consumed in the tests: it sits in its queue."""


@tp.task(name="ops.chatty", queue="ops", retry=Retry(max_retries=1, backoff=(0.1,), jitter=False))
def chatty(key: str) -> str:
    """Logs through a plain logger and Celery's task logger; fails its first attempt."""
    attempt = tp.storage.client.incr(key)
    plain_log.info("plain line from attempt %s", attempt)
    task_log.warning("task-logger line from attempt %s", attempt)
    if attempt == 1:
        raise ConnectionError("first attempt fails")
    return "logged"


tp.periodic(add, every=3600, args=(1, 2), name="ops-hourly")
