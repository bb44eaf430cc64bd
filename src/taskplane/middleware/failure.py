"""The one failure path: every dead letter, whatever put it there, is built, stored and counted here."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import traceback
from collections.abc import Callable
from functools import cached_property
from typing import Any

from taskplane.core.clock import compact_json, now_ms
from taskplane.core.protocol import DeadReason, Header, Metric, TaskState
from taskplane.middleware.base import Run
from taskplane.redis.storage import Storage
from taskplane.stores.dead_letters import DeadLetter, DeadLetterCap, DeadLetterStore
from taskplane.stores.metrics import TaskMetrics, this_host
from taskplane.stores.records import RecordStore
from taskplane.stores.unique_locks import UniqueLocks

#: Largest JSON text of the arguments kept in a dead letter.
MAX_ARGUMENTS_CHARS = 1 << 20


class FailurePath:
    """Dead-letters a task or a message: the envelope, the record marked dead, the uniqueness lock
    released, and the metric (``rejected`` for a message refused without running, else ``failed``)."""

    def __init__(self, storage: Callable[[], Storage], record_retention: int, dead_letter_cap: DeadLetterCap) -> None:
        self._storage = storage
        self._retention = record_retention
        self._cap = dead_letter_cap

    @cached_property
    def _records(self) -> RecordStore:
        return RecordStore(self._storage(), self._retention)

    @cached_property
    def _dead_letters(self) -> DeadLetterStore:
        return DeadLetterStore(self._storage(), [], self._cap)

    @cached_property
    def _unique_locks(self) -> UniqueLocks:
        return UniqueLocks(self._storage())

    @cached_property
    def _metrics(self) -> TaskMetrics:
        return TaskMetrics(self._storage())

    def bury_malformed(self, queue: str, item: str | bytes) -> DeadLetter:
        """Dead-letter a queue item that is not a message (the fetch script set it aside in quarantine, or its
        bytes are not UTF-8 text: those are kept as base64, ``raw_encoding`` says so)."""
        data = item.encode() if isinstance(item, str) else item
        try:
            raw, encoding, message = data.decode(), "", MALFORMED_MESSAGE
        except UnicodeDecodeError as exc:
            raw, encoding = base64.b64encode(data).decode(), "base64"
            message = f"queue item is not UTF-8 text ({exc.reason} at byte {exc.start} of {len(data)})"
        letter = self.bury(
            DeadReason.MALFORMED,
            task_id="malformed-" + hashlib.sha256(data).hexdigest()[:24],
            name="",
            queue=queue,
            attempts=0,
            exception_type="MalformedMessage",
            message=message,
            raw=raw,
            raw_encoding=encoding,
        )
        storage = self._storage()
        storage.client.hdel(storage.keys.quarantine(queue), hashlib.sha1(data).hexdigest())
        return letter

    def bury_quarantined(self, queues: list[str], queue_of: Callable[[str], str]) -> int:
        """Dead-letter what a worker set aside from ``queues`` but did not finish (it died in between); returns
        how many. The entries are read as bytes: an item that is not UTF-8 text is kept as it was."""
        storage = self._storage()
        client = storage.binary()
        buried = 0
        try:
            for queue in queues:
                entries = client.hgetall(storage.keys.quarantine(queue))
                for field, value in entries.items():
                    list_name, item = _quarantine_entry(value)
                    self.bury_malformed(queue_of(list_name) if list_name else queue, item)
                    client.hdel(storage.keys.quarantine(queue), field)  # also an entry whose field is not its sha1
                buried += len(entries)
        finally:
            client.close()
        return buried

    def bury_run(
        self,
        reason: DeadReason,
        run: Run,
        *,
        exc: BaseException | None = None,
        exception_type: str | None = None,
        message: str | None = None,
        runtime: float | None = None,
    ) -> DeadLetter:
        """Dead-letter the task of a delivery being run (see :meth:`bury`)."""
        return self.bury(
            reason,
            task_id=run.task_id,
            name=run.name,
            queue=run.queue,
            attempts=run.attempt + 1,
            worker=run.worker,
            args=run.args,
            kwargs=run.kwargs,
            exc=exc,
            exception_type=exception_type,
            message=message,
            unique_digest=run.headers.get(Header.UNIQUE),
            runtime=runtime,
            priority=int((getattr(run.task.request, "delivery_info", None) or {}).get("priority") or 0),
        )

    def bury(
        self,
        reason: DeadReason,
        *,
        task_id: str,
        name: str,
        queue: str,
        attempts: int,
        worker: str = "",
        args: Any = (),
        kwargs: Any = None,
        exc: BaseException | None = None,
        exception_type: str | None = None,
        message: str | None = None,
        raw: str | None = None,
        raw_encoding: str = "",
        unique_digest: str | None = None,
        runtime: float | None = None,
        traceback_text: str | None = None,
        priority: int = 0,
        record_state: TaskState = TaskState.DEAD,
    ) -> DeadLetter:
        """Dead-letter one task or message and return its envelope.

        ``exception_type`` and ``message`` default to those of ``exc``; ``raw`` keeps a message that
        cannot be requeued as a task; ``runtime`` goes to the record; ``traceback_text`` stands in for
        the traceback of ``exc`` when the exception itself is gone; ``record_state`` is what the record
        says (``cancelled`` for an expired task, as Celery's REVOKED).
        """
        stamp = now_ms()
        record = self._records.get(task_id, queue) if name else None
        first = int(record.fields.get("first_failure_ms", 0)) if record else 0
        text = message if message is not None else (str(exc) if exc is not None else "")
        letter = DeadLetter(
            id=task_id,
            name=name,
            queue=queue,
            reason=str(reason),
            args=_json_copy(list(args or ())),
            kwargs=_json_copy(dict(kwargs or {})),
            exception_type=exception_type or (type(exc).__name__ if exc is not None else ""),
            exception_message=text[:2000],
            traceback="".join(traceback.format_exception(exc)) if exc is not None else (traceback_text or ""),
            attempts=attempts,
            first_failure_ms=first or stamp,
            last_failure_ms=stamp,
            worker=worker,
            raw=raw,
            priority=priority,
            raw_encoding=raw_encoding,
        )
        self._dead_letters.add(letter)
        if name:
            fields: dict[str, Any] = {} if runtime is None else {"runtime": round(runtime, 6)}
            self._records.write(
                task_id,
                name,
                queue,
                record_state,
                finished_ms=stamp,
                reason=letter.reason,
                error_type=letter.exception_type,
                error_message=letter.exception_message,
                **fields,
            )
        if unique_digest:
            self._unique_locks.release(queue, unique_digest, task_id)
        host = worker or this_host()
        changes = self._metrics.changes(host)
        if reason.rejected:
            changes.count(Metric.REJECTED, name, host, queue)
        else:
            changes.count(Metric.FAILED, name, host, queue, letter.exception_type)
        self._metrics.write(changes)
        return letter


#: The queue a quarantine entry is dead-lettered to when it does not say which list it came from.
UNKNOWN_LIST = "unknown"
MALFORMED_MESSAGE = "queue item is not a kombu message (not JSON, or missing body/properties)"


def _quarantine_entry(value: bytes) -> tuple[str | None, bytes]:
    """(list name, item bytes) of a quarantine entry: ``<list>\\n<item>`` (an older fetch wrote the JSON
    ``[list, item]``); (None, value) when it is neither."""
    if value.startswith(b"["):
        with contextlib.suppress(ValueError):
            list_name, item = json.loads(value)
            return str(list_name), str(item).encode()
    head, newline, item = value.partition(b"\n")
    if not newline:
        return None, value
    return head.decode(errors="replace"), item


def _json_copy(value: Any) -> Any:
    """``value`` as plain JSON data (values JSON cannot hold become their repr), cut to a bounded size."""
    text, cut = compact_json(value, MAX_ARGUMENTS_CHARS)
    return json.loads(text) if not cut else {"truncated": text}
