"""Celery's Redis result backend, without a SUBSCRIBE to the result channel at every publish."""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend


class ResultBackend(RedisBackend):
    """Celery subscribes to every task's result channel when it publishes it, so that a later
    ``AsyncResult.get()`` cannot miss the result: two commands per enqueue, and an enqueue that blocks
    on reconnecting to the result store when Redis is down. Whoever waits subscribes when it starts
    waiting instead (``get()`` reads the stored result right after subscribing, so nothing is missed)."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Nothing: the result channel is subscribed to when someone waits."""
