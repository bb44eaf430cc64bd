"""Enqueueing: argument checks, idempotency keys, publishing, and the inline fallback when Redis is down."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import redis

from taskplane.client.handle import TaskHandle
from taskplane.client.tasks import Tasks
from taskplane.core.errors import ConfigurationError, TaskArgumentsError
from taskplane.core.ids import new_task_id
from taskplane.core.protocol import PublishOption
from taskplane.core.registry import TaskRegistry
from taskplane.core.topology import Topology
from taskplane.middleware.base import Publish
from taskplane.middleware.chain import deferred_publications
from taskplane.redis.client import (
    CONNECTION_ERRORS,
    RESOLVE_TIMEOUT,
    connect,
    refusal,
    unavailable,
    unknown_chunk_outcome,
    unknown_outcome,
)
from taskplane.redis.publish_ops import CollectedPublish, collected_publishes, resolve_publishes, send_publishes
from taskplane.stores.bundle import Stores
from taskplane.stores.idempotency import call_fingerprint

log = logging.getLogger("taskplane")

#: Messages sent per round trip by :meth:`Producer.enqueue_many`.
BATCH_CHUNK = 200
#: What leaves a chunk that got no reply unresolved: no answer to the check, or a publish without its own
#: claim (:func:`~taskplane.redis.publish_ops.resolve_publishes`).
UNRESOLVED: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, ValueError)


class PublishingApp(Protocol):
    """What the producer needs of the Celery app it publishes on (``TaskplaneCelery``)."""

    @property
    def tasks(self) -> Mapping[str, Any]:
        """The registered Celery tasks by name."""

    def publish(self, task: Any, args: list[Any], kwargs: dict[str, Any], options: dict[str, Any]) -> tuple[str, bool]:
        """Publish one checked call; returns (the task id, whether an equal task existed and nothing was sent)."""

    def send_many(
        self, task: Any, calls: list[tuple[list[Any], dict[str, Any]]], options: dict[str, Any]
    ) -> list[Publish]:
        """Publish a chunk of checked calls (collected when a batch enqueue collects publishes); returns the
        publishes (each ``existing_id`` is known once the chunk went out)."""

    def batch_scope(self) -> AbstractContextManager[object]:
        """What a batch enqueue runs in (one pooled connection held for all its chunks)."""

    def eager(self) -> bool:
        """True when calls run in the calling process (Celery's ``task_always_eager``, set by the team)."""


@dataclass
class Chunk:
    """One round trip of a batch enqueue: its publishes, their collected ``publish.lua`` calls, and the
    after-publish hooks to run once it went out."""

    publishes: list[Publish] = field(default_factory=list)
    collected: list[CollectedPublish] = field(default_factory=list)
    published: list[Callable[[], None]] = field(default_factory=list)

    def task_ids(self) -> list[str]:
        """The ids of the chunk's tasks, in order."""
        return [publish.task_id for publish in self.publishes]


@dataclass(frozen=True)
class Call:
    """One item of a batch enqueue with both positional and keyword arguments."""

    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


class Producer:
    """Queues declared tasks on one Celery app (see :meth:`taskplane.Taskplane.enqueue`)."""

    def __init__(
        self,
        app: PublishingApp,
        registry: TaskRegistry,
        topology: Topology,
        stores: Stores,
        fallback: str,
        tasks: Tasks,
    ) -> None:
        self._app = app
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
        task: Any = self._app.tasks[name]
        options = {**self._options(queue, countdown, eta), "task_id": task_id or new_task_id()}
        if self._app.eager():  # as Celery's apply_async does with task_always_eager
            result = task.apply(tuple(args), kwargs, task_id=options["task_id"])
            return TaskHandle(self._tasks, result.id, inline_result=result, name=name, queue=options.get("queue", ""))
        if idempotency_key is not None:
            # Bound in the publish script itself, with the message: one round trip, never one without the other.
            fingerprint = call_fingerprint(name, list(args), kwargs)
            claim = self._stores.idempotency.claim_for(idempotency_key, options["task_id"], fingerprint)
            options[PublishOption.IDEMPOTENCY.value] = claim
        try:
            task_id, existing = self._app.publish(task, list(args), kwargs, options)
        except redis.TimeoutError as exc:  # the server may have it: never run inline (it could run twice)
            raise unknown_outcome(self._stores.redis_url, options["task_id"], exc) from None
        except CONNECTION_ERRORS as exc:  # (before ResponseError: a refusal, e.g. OOM, is one)
            inline = self.run_inline(task, args, kwargs, options["task_id"], exc)
            return TaskHandle(self._tasks, inline.id, inline_result=inline, name=name, queue=options.get("queue", ""))
        except redis.ResponseError as exc:
            raise refusal(self._stores.redis_url, exc) from None
        return TaskHandle(self._tasks, task_id, existing=existing)

    def run_inline(self, task: Any, args: Any, kwargs: Any, task_id: str, exc: BaseException) -> Any:
        """After publishing failed with ``exc`` (Redis unreachable): run ``task`` in this process, loudly
        logged, when the fallback is ``inline``; returns Celery's EagerResult.

        Raises:
            RedisUnavailableError: the fallback is ``error``.
        """
        error = unavailable(self._stores.redis_url, exc)
        if self._fallback != "inline":
            raise error from None
        log.error("taskplane: %s -- running %s INLINE in this process (fallback='inline')", error, task.name)
        return task.apply(tuple(args or ()), dict(kwargs or {}), task_id=task_id)

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
        arguments, or a :class:`Call` with both); returns their handles in order. Every item is
        checked first, as :meth:`enqueue` checks one, so a bad item queues nothing. Then
        :data:`BATCH_CHUNK` messages go per round trip, each with its record: the app's batch path
        writes a message and its record in the same atomic script call (one per 100 messages).

        Raises:
            UnknownTaskError, TaskArgumentsError (naming the item), ConfigurationError, PayloadTooLargeError,
            RedisUnavailableError (the chunks before the failing one were queued; no inline fallback).
        """
        self._registry.require(name)
        calls: list[tuple[list[Any], dict[str, Any]]] = []
        for index, item in enumerate(items):
            if isinstance(item, Call):
                args, kwargs = list(item.args), dict(item.kwargs)
            elif isinstance(item, Mapping):
                args, kwargs = [], dict(item)
            else:
                args, kwargs = list(item), {}
            try:
                self._registry.check_arguments(name, args, kwargs)
            except TaskArgumentsError as exc:
                raise TaskArgumentsError(f"item {index}: {exc}") from None
            calls.append((args, kwargs))
        options = self._options(queue, countdown, eta)
        with self._app.batch_scope():
            return self._send_chunks(self._app.tasks[name], calls, options)

    def _options(self, queue: str | None, countdown: float | None, eta: datetime | None) -> dict[str, Any]:
        """The publish options of an enqueue, checked.

        Raises:
            ConfigurationError: an unknown queue, or a negative countdown.
        """
        if queue is not None:
            self._topology.get(queue)
        if countdown is not None and countdown < 0:
            raise ConfigurationError(f"countdown must be >= 0, not {countdown}")
        options: dict[str, Any] = {"countdown": countdown, "eta": eta}
        if queue is not None:
            options["queue"] = queue
        return options

    def _send_chunks(
        self, task: Any, calls: list[tuple[list[Any], dict[str, Any]]], options: dict[str, Any]
    ) -> list[TaskHandle]:
        """Publish ``calls``, :data:`BATCH_CHUNK` messages per round trip; returns their handles in order.
        With more than one chunk, a chunk is sent by a helper thread while the next one is built (the
        server's work and ours overlap); at most one chunk is in flight."""
        sent: list[Publish] = []
        in_flight: tuple[Future[None], Chunk] | None = None
        with contextlib.ExitStack() as stack:
            sender = None
            if len(calls) > BATCH_CHUNK:
                sender = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="taskplane-batch"))
            for start in range(0, len(calls), BATCH_CHUNK):
                chunk = Chunk()
                tokens = collected_publishes.set(chunk.collected), deferred_publications.set(chunk.published)
                try:
                    chunk.publishes = self._app.send_many(task, calls[start : start + BATCH_CHUNK], options)
                except CONNECTION_ERRORS as exc:
                    raise unavailable(self._stores.redis_url, exc) from None
                except redis.ResponseError as exc:
                    raise refusal(self._stores.redis_url, exc) from None
                finally:
                    collected_publishes.reset(tokens[0])
                    deferred_publications.reset(tokens[1])
                sent.extend(chunk.publishes)
                if in_flight is not None:
                    self._sent(in_flight[0].result, in_flight[1])
                batch = self._stores.storage.batch()
                if sender is None:
                    self._sent(functools.partial(send_publishes, batch, chunk.collected), chunk)
                else:
                    in_flight = sender.submit(send_publishes, batch, chunk.collected), chunk
            if in_flight is not None:
                self._sent(in_flight[0].result, in_flight[1])
        return [
            TaskHandle(self._tasks, publish.task_id)
            if publish.existing_id is None
            else TaskHandle(self._tasks, publish.existing_id, existing=True)
            for publish in sent
        ]

    def _sent(self, send: Callable[[], None], chunk: Chunk) -> None:
        """Run (or wait for) the sending of ``chunk``, then the after-publish hooks of its messages. A chunk
        that got no reply in time is resolved by each publish's own claim, on a connection of its own with
        a short timeout: those that went out are done, the others are fenced off (they can never apply
        late) and sent once more.

        Raises:
            RedisUnavailableError: Redis is unreachable, or did not answer the check or the second send
                (the chunk's outcome is unknown then; none of its publishes is applied twice).
        """
        url = self._stores.redis_url
        try:
            try:
                send()
            except redis.TimeoutError as exc:
                check = connect(url, timeout=RESOLVE_TIMEOUT)
                try:
                    again = resolve_publishes(check, chunk.collected)
                except UNRESOLVED:
                    raise unknown_chunk_outcome(url, chunk.task_ids(), exc) from None
                finally:
                    check.close()
                try:
                    if again:
                        send_publishes(self._stores.storage.batch(), again)
                except redis.TimeoutError as second:
                    raise unknown_chunk_outcome(url, chunk.task_ids(), second) from None
        except CONNECTION_ERRORS as exc:
            raise unavailable(url, exc) from None
        except redis.ResponseError as exc:
            raise refusal(url, exc) from None
        for announce in chunk.published:
            announce()

    def enqueue_id(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], queue: str | None, task_id: str
    ) -> str:
        """Queue ``name`` with a chosen id; returns the id of the task queued (or found)."""
        return self.enqueue(name, args, kwargs, queue=queue, task_id=task_id).id
