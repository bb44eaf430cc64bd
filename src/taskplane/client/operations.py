"""What users do with tasks by name or id: enqueue, look up, wait for, read the result of, cancel."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from taskplane.client.handle import TaskHandle
from taskplane.client.producer import Call, Producer
from taskplane.client.tasks import Tasks
from taskplane.redis.storage import Storage
from taskplane.stores.api_keys import ApiKeyStore
from taskplane.stores.bundle import Stores
from taskplane.stores.records import RecordPage, RecordStore, TaskRecord


class TaskOperations:
    """The task operations of ``Taskplane``, over its producer, its task look-ups and its stores."""

    producer: Producer
    task_lookup: Tasks
    stores: Stores

    @property
    def storage(self) -> Storage:
        """Redis client, key names and scripts."""
        return self.stores.storage

    @property
    def records(self) -> RecordStore:
        """Task records."""
        return self.stores.records

    @property
    def api_keys(self) -> ApiKeyStore:
        """API keys of the HTTP API."""
        return self.stores.api_keys

    # -- producing -------------------------------------------------------------------------------

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
        """Queue task ``name``; returns its handle. ``unique_for`` tasks may return an existing task's handle,
        and so does a repeated ``idempotency_key`` (for as long as records are kept).

        Raises:
            UnknownTaskError, TaskArgumentsError, ConfigurationError (unknown queue, negative countdown),
            IdempotencyConflictError (the key was used for another call), PayloadTooLargeError,
            RedisUnavailableError (unless ``fallback="inline"``).
        """
        return self.producer.enqueue(
            name,
            args,
            kwargs,
            queue=queue,
            countdown=countdown,
            eta=eta,
            task_id=task_id,
            idempotency_key=idempotency_key,
        )

    # -- operating -------------------------------------------------------------------------------

    def enqueue_many(
        self,
        name: str,
        items: Iterable[Sequence[Any] | Mapping[str, Any] | Call],
        *,
        queue: str | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
    ) -> list[TaskHandle]:
        """Queue one task ``name`` per item (a list of positional arguments, a dict of keyword
        arguments, or a :class:`taskplane.Call` with both); returns the handles in order. Every item is
        checked before anything is queued; then 200 go per round trip, 100 per atomic script call.

        Raises:
            UnknownTaskError, TaskArgumentsError (naming the item), ConfigurationError,
            PayloadTooLargeError, RedisUnavailableError (earlier chunks were queued; no inline fallback).
        """
        return self.producer.enqueue_many(name, items, queue=queue, countdown=countdown, eta=eta)

    def handle(self, task_id: str) -> TaskHandle:
        """A handle on the task ``task_id`` (to wait for it, read its result, cancel it)."""
        return TaskHandle(self.task_lookup, task_id)

    def status(self, task_id: str) -> TaskRecord | None:
        """The task's record, or None if no such task exists."""
        return self.task_lookup.get(task_id)

    def result(self, task_id: str) -> Any:
        """The result of a finished task, without waiting.

        Raises:
            NotFoundError: no such task.
            NotFinishedError: it has not finished yet.
            TaskFailedError: it ended dead-lettered or cancelled.
        """
        return self.task_lookup.result(task_id)

    def tasks(
        self,
        state: str | None = None,
        name: str | None = None,
        queue: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
        id_prefix: str | None = None,
    ) -> RecordPage:
        """Task records newest first, filtered by state, name, queue, creation time and id prefix, paged by
        cursor. A page can hold fewer than ``limit`` records and still have a ``next_cursor`` (one call reads
        at most a few thousand index entries).

        Raises:
            InvalidRequestError: an unknown state or a cursor that was not handed out.
        """
        return self.stores.records.find(state, name, queue, since_ms, until_ms, limit, cursor, id_prefix)

    def cancel(self, task_id: str, terminate_after: float | None = None) -> str:
        """Cancel a task: a queued or delayed one never runs; a running one sees ``is_cancelled()``
        and, if ``terminate_after`` is given, is terminated that many seconds later. Returns the state.

        Raises:
            NotFoundError: no such task.
        """
        return self.task_lookup.cancel(task_id, terminate_after)
