"""Enqueueing: argument checks, idempotency keys, publishing, and the inline fallback when Redis is down."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

from celery import Celery
from celery.utils import uuid

from taskplane.client.handle import TaskHandle
from taskplane.client.tasks import Tasks
from taskplane.core.errors import ConfigurationError
from taskplane.core.registry import TaskRegistry
from taskplane.core.topology import Topology
from taskplane.redis.client import CONNECTION_ERRORS, unavailable
from taskplane.stores.bundle import Stores
from taskplane.stores.idempotency import call_fingerprint

log = logging.getLogger("taskplane")


class Producer:
    """Queues declared tasks on one Celery app (see :meth:`taskplane.Taskplane.enqueue`)."""

    def __init__(
        self, celery: Celery, registry: TaskRegistry, topology: Topology, stores: Stores, fallback: str, tasks: Tasks
    ) -> None:
        self._celery = celery
        self._registry = registry
        self._topology = topology
        self._stores = stores
        self._fallback = fallback
        self._tasks = tasks

    def enqueue(
        self,
        name: str,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        task_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> TaskHandle:
        """Queue task ``name``; returns its handle (see :meth:`taskplane.Taskplane.enqueue` for the errors)."""
        kwargs = dict(kwargs or {})
        self._registry.check_arguments(name, args, kwargs)
        if queue is not None:
            self._topology.get(queue)
        if countdown is not None and countdown < 0:
            raise ConfigurationError(f"countdown must be >= 0, not {countdown}")
        task: Any = self._celery.tasks[name]
        options: dict[str, Any] = {"countdown": countdown, "eta": eta, "task_id": task_id or uuid()}
        if queue is not None:
            options["queue"] = queue
        try:
            if idempotency_key is None:
                result = task.apply_async(list(args), kwargs, **options)
            else:
                claimed = self._apply_once(task, idempotency_key, list(args), kwargs, options)
                if isinstance(claimed, str):
                    return TaskHandle(self._tasks, claimed, existing=True)
                result = claimed
        except CONNECTION_ERRORS as exc:
            error = unavailable(self._stores.redis_url, exc)
            if self._fallback != "inline":
                raise error from None
            log.error("taskplane: %s -- running %s INLINE in this process (fallback='inline')", error, name)
            inline = task.apply(tuple(args), kwargs, task_id=options["task_id"])
            return TaskHandle(self._tasks, inline.id, inline_result=inline)
        return TaskHandle(self._tasks, result.id, existing=bool(getattr(result, "taskplane_existing", False)))

    def enqueue_id(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], queue: str | None, task_id: str
    ) -> str:
        """Queue ``name`` with a chosen id; returns the id of the task queued (or found)."""
        return self.enqueue(name, args, kwargs, queue=queue, task_id=task_id).id

    def _apply_once(self, task: Any, key: str, args: list[Any], kwargs: dict[str, Any], options: dict[str, Any]) -> Any:
        """Publish unless ``key`` already made a task: returns that task's id, or the new AsyncResult."""
        idempotency = self._stores.idempotency
        fingerprint = call_fingerprint(task.name, args, kwargs)
        existing = idempotency.claim(key, options["task_id"], fingerprint)
        if existing is not None:
            return existing
        try:
            result = task.apply_async(args, kwargs, **options)
        except BaseException:
            with contextlib.suppress(*CONNECTION_ERRORS):
                idempotency.release(key, options["task_id"], fingerprint)
            raise
        if result.id != options["task_id"]:  # unique_for answered with another task: bind nothing
            idempotency.release(key, options["task_id"], fingerprint)
        return result
