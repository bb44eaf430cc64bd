"""Plain Celery, configured the way the hand-made "production-grade" setups are: Redis broker and result
backend, ``acks_late``, JSON, prefork. The benchmark's baseline (``celery -A benchmarks.plain_celery_app``)."""

from __future__ import annotations

import os

from celery import Celery

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("plain", broker=URL, backend=URL)
app.conf.update(
    task_acks_late=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop(index: int, payload: str = "") -> int:
    """Does nothing."""
    return index
