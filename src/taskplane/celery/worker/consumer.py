"""Celery consumer hooks: unknown tasks and undecodable messages go to the dead letters, not away."""

from __future__ import annotations

import json
import logging
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

from taskplane.stores.dead_letters import DeadLetter
from taskplane.stores.records import now_ms

log = logging.getLogger("taskplane.worker")


class Consumer(CeleryConsumer):
    """Celery's consumer; each bad message is dead-lettered with a reason before it is removed."""

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        """A message naming a task this worker does not know."""
        self._dead_letter(message, "unknown_task", exc)
        super().on_unknown_task(body, message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        """A message that is not a task message."""
        self._dead_letter(message, "malformed", None)
        super().on_unknown_message(body, message)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        """A task message whose fields are invalid."""
        self._dead_letter(message, "malformed", exc)
        super().on_invalid_task(body, message, exc)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        """A message whose body cannot be decoded (bad JSON, or a refused content type such as pickle)."""
        self._dead_letter(message, "malformed", exc)
        super().on_decode_error(message, exc)

    def _dead_letter(self, message: Any, reason: str, exc: BaseException | None) -> None:
        app: Any = self.app
        tp = app.taskplane
        headers = getattr(message, "headers", None) or {}
        delivery = getattr(message, "delivery_info", None) or {}
        raw = getattr(message, "_raw", None)
        stamp = now_ms()
        letter = DeadLetter(
            id=str(headers.get("id") or getattr(message, "delivery_tag", "") or stamp),
            name=str(headers.get("task") or ""),
            queue=str(delivery.get("routing_key") or "normal"),
            reason=reason,
            exception_type=type(exc).__name__ if exc is not None else "",
            exception_message=(str(exc) if exc is not None else "not a task message")[:2000],
            attempts=int(headers.get("retries") or 0) + 1,
            first_failure_ms=stamp,
            last_failure_ms=stamp,
            worker=self.hostname or "",
            raw=json.dumps(raw) if raw is not None else None,
        )
        try:
            tp.bury(letter)
            rejected = tp.task_metrics.changes(self.hostname).count(
                "celery_task_rejected_total", letter.name, self.hostname or "", letter.queue
            )
            tp.task_metrics.write(rejected)
        except Exception:
            log.exception("could not dead-letter message %s", letter.id)
