"""Celery's Redis result backend, without a SUBSCRIBE to the result channel at every publish."""

from __future__ import annotations

import logging
from typing import Any

from celery.backends.redis import RedisBackend

from taskplane.redis.client import CONNECTION_ERRORS

log = logging.getLogger("taskplane.worker")
#: What a result write raises when Redis is gone (a broken pipe surfaces as a plain OSError).
RESULT_STORE_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, OSError)


class ResultBackend(RedisBackend):
    """Celery subscribes to every task's result channel when it publishes it, so that a later
    ``AsyncResult.get()`` cannot miss the result: two commands per enqueue, and an enqueue that blocks
    on reconnecting to the result store when Redis is down. Whoever waits subscribes when it starts
    waiting instead (``get()`` reads the stored result right after subscribing, so nothing is missed)."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Nothing: the result channel is subscribed to when someone waits."""

    def store_result(self, task_id: str, result: Any, state: str, *args: Any, **kwargs: Any) -> Any:
        """Celery's store (retried through a short outage by ``result_backend_always_retry``); if Redis stays
        unreachable, the failure is logged instead of raised: raised, Celery would record a task that ran
        as failed "outside its body" and acknowledge it. The taskplane record holds the outcome."""
        try:
            return super().store_result(task_id, result, state, *args, **kwargs)
        except RESULT_STORE_ERRORS as exc:
            log.warning("could not store the Celery result of %s (%s): %s", task_id, state, exc)
            return result
