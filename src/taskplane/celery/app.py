"""The Celery app class: a real ``celery.Celery`` that records every task before publishing it."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis
from celery import Celery
from celery.utils import uuid

from taskplane.stores.records import compact_json, now_ms
from taskplane.celery.task import TaskplaneTask
from taskplane.stores.metrics import this_host
from taskplane.celery.transport import REQUEUE_HEADER

if TYPE_CHECKING:
    from taskplane.app import Taskplane


class TaskplaneCelery(Celery):
    """A real ``celery.Celery`` whose ``send_task`` writes the task record before publishing."""

    def __init__(self, main: str, taskplane: Taskplane) -> None:
        super().__init__(main, task_cls=TaskplaneTask, set_as_current=False)
        self.taskplane = taskplane

    def send_task(  # type: ignore[override]
        self,
        name: str,
        args: Any = None,
        kwargs: Any = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        task_id: str | None = None,
        **options: Any,
    ) -> Any:
        """Record the task as queued/scheduled, then publish it (the record is removed if publishing fails)."""
        record = options.pop("taskplane_record", True)
        requeue_of = options.pop("taskplane_requeue_of", None)
        tp = self.taskplane
        task_id = task_id or uuid()
        queue = options.get("queue")
        queue = getattr(queue, "name", queue) or tp.queue_for(name)
        options["queue"] = queue
        if requeue_of is not None:
            options["headers"] = {**(options.get("headers") or {}), REQUEUE_HEADER: json.dumps(requeue_of)}
        if record:
            eta_ms = None
            if eta is not None:
                eta_ms = int(eta.timestamp() * 1000)
            elif countdown:
                eta_ms = now_ms() + int(countdown * 1000)
            batch = tp.storage.batch()
            tp.records.write(
                task_id,
                name,
                queue,
                "scheduled" if eta_ms else "queued",
                batch=batch,
                args=compact_json(list(args or ()))[0],
                kwargs=compact_json(dict(kwargs or {}))[0],
                eta_ms=eta_ms,
                attempts=0,
                retries=0,
            )
            sent = tp.task_metrics.changes().count("celery_task_sent_total", name, this_host(), queue)
            tp.task_metrics.write(sent, batch.pipe)
            batch.execute()
        try:
            return super().send_task(name, args, kwargs, countdown=countdown, eta=eta, task_id=task_id, **options)
        except BaseException:
            if record:
                with contextlib.suppress(redis.RedisError):
                    tp.records.delete(task_id)
                    unsent = tp.task_metrics.changes()
                    tp.task_metrics.write(unsent.count("celery_task_sent_total", name, this_host(), queue, amount=-1))
            raise
