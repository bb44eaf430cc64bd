"""Celery consumer hooks: unknown tasks and undecodable messages go to the dead letters, not away; the
consuming connection's fetch starts the tasks it takes (:mod:`taskplane.celery.fetch`)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer
from redis.exceptions import OutOfMemoryError

from taskplane.celery.fetch import REFUSED_PAUSE
from taskplane.compat import raw_payload
from taskplane.core.backoff import Backoff
from taskplane.core.clock import now_ms
from taskplane.core.protocol import DeadReason, TransportOption
from taskplane.core.topology import DEFAULT_QUEUE

log = logging.getLogger("taskplane.worker")


class Consumer(CeleryConsumer):
    """Celery's consumer; each bad message is dead-lettered with a reason before it is removed, and a restart
    a full server caused waits for memory."""

    _refused: Backoff | None = None

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        """Celery's, then, when the server refused a write for want of memory (the queues' bindings a starting
        consumer declares), a pause that doubles up to 2 s: Celery restarts a consumer at once, and would
        declare, be refused and restart hundreds of times a minute while the server stays full."""
        super().on_connection_error_after_connected(exc)
        if not isinstance(exc, OutOfMemoryError):
            return
        refused = self._refused = self._refused or Backoff(*REFUSED_PAUSE)
        if time.monotonic() - refused.until > 60:  # a new episode
            refused.reset()
        if not refused.wait:
            log.warning("Redis refuses writes (%s): the worker waits for memory", exc)
        time.sleep(refused.step())

    def connection_for_read(self, heartbeat: float | None = None) -> Any:
        """Celery's consuming connection, whose fetch starts the tasks it takes as this worker, except the
        tasks with a rate limit (their process reserves their slot as it starts them)."""
        connection = self.app.connection_for_read(heartbeat=heartbeat)
        limited = sorted(
            name for name, task in self.app.tasks.items() if getattr(task, "taskplane_rate_limit", None) is not None
        )
        options = {**(connection.transport_options or {}), TransportOption.FETCH_START.value: [self.hostname, limited]}
        connection.transport_options = options
        return self.ensure_connected(connection)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        """A message naming a task this worker does not know."""
        self._dead_letter(message, DeadReason.UNKNOWN_TASK, exc)
        super().on_unknown_task(body, message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        """A message that is not a task message."""
        self._dead_letter(message, DeadReason.MALFORMED, None)
        super().on_unknown_message(body, message)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        """A task message whose fields are invalid."""
        self._dead_letter(message, DeadReason.MALFORMED, exc)
        super().on_invalid_task(body, message, exc)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        """A message whose body cannot be decoded (bad JSON, or a refused content type such as pickle)."""
        self._dead_letter(message, DeadReason.MALFORMED, exc)
        super().on_decode_error(message, exc)

    def _dead_letter(self, message: Any, reason: DeadReason, exc: BaseException | None) -> None:
        app: Any = self.app
        headers = getattr(message, "headers", None) or {}
        delivery = getattr(message, "delivery_info", None) or {}
        raw = raw_payload(message)
        try:
            app.failure.bury(
                reason,
                task_id=str(headers.get("id") or getattr(message, "delivery_tag", "") or now_ms()),
                name=str(headers.get("task") or ""),
                queue=str(delivery.get("routing_key") or DEFAULT_QUEUE),
                attempts=int(headers.get("retries") or 0) + 1,
                worker=self.hostname or "",
                exc=exc,
                message=None if exc is not None else "not a task message",
                raw=json.dumps(raw) if raw is not None else None,
            )
        except Exception:
            log.exception("could not dead-letter message %s", headers.get("id"))
