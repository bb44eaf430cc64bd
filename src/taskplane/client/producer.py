"""Enqueueing: argument checks, idempotency keys, publishing, and the inline fallback when Redis is down."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from celery.utils import uuid

from taskplane.core.errors import ConfigurationError
from taskplane.client.handle import TaskHandle
from taskplane.stores.idempotency import call_fingerprint
from taskplane.redis.client import CONNECTION_ERRORS, unavailable

if TYPE_CHECKING:
    from taskplane.app import Taskplane
    from taskplane.celery.task import TaskplaneTask

log = logging.getLogger("taskplane")


def enqueue(
    tp: Taskplane,
    name: str,
    args: tuple[Any, ...] | list[Any],
    kwargs: dict[str, Any] | None,
    queue: str | None,
    countdown: float | None,
    eta: datetime | None,
    task_id: str | None,
    idempotency_key: str | None,
) -> TaskHandle:
    """Queue task ``name`` for ``tp`` (see :meth:`taskplane.Taskplane.enqueue` for the errors)."""
    kwargs = dict(kwargs or {})
    tp.check_arguments(name, args, kwargs)
    if queue is not None:
        tp.topology.get(queue)
    if countdown is not None and countdown < 0:
        raise ConfigurationError(f"countdown must be >= 0, not {countdown}")
    task = tp.get_task(name)
    options: dict[str, Any] = {"countdown": countdown, "eta": eta, "task_id": task_id or uuid()}
    if queue is not None:
        options["queue"] = queue
    try:
        if idempotency_key is None:
            result = task.apply_async(list(args), kwargs, **options)
        else:
            claimed = _apply_once(tp, task, idempotency_key, list(args), kwargs, options)
            if isinstance(claimed, str):
                return TaskHandle(tp, claimed, existing=True)
            result = claimed
    except CONNECTION_ERRORS as exc:
        error = unavailable(tp.redis_url, exc)
        if tp.fallback != "inline":
            raise error from None
        log.error("taskplane: %s -- running %s INLINE in this process (fallback='inline')", error, name)
        inline = task.apply(tuple(args), kwargs, task_id=options["task_id"])
        return TaskHandle(tp, inline.id, inline_result=inline)
    return TaskHandle(tp, result.id, existing=bool(getattr(result, "taskplane_existing", False)))


def _apply_once(
    tp: Taskplane, task: TaskplaneTask, key: str, args: list[Any], kwargs: dict[str, Any], options: dict[str, Any]
) -> Any:
    """Publish unless ``key`` already made a task: returns that task's id, or the new AsyncResult."""
    fingerprint = call_fingerprint(task.name, args, kwargs)
    existing = tp.idempotency.claim(key, options["task_id"], fingerprint)
    if existing is not None:
        return existing
    try:
        result = task.apply_async(args, kwargs, **options)
    except BaseException:
        with contextlib.suppress(*CONNECTION_ERRORS):
            tp.idempotency.release(key, options["task_id"], fingerprint)
        raise
    if result.id != options["task_id"]:  # unique_for answered with another task: bind nothing
        tp.idempotency.release(key, options["task_id"], fingerprint)
    return result
