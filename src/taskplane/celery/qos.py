"""Acknowledgements of taskplane's channel, per queue: every queue keeps its deliveries in flight in a hash
and a lease index of its own (:meth:`Keys.unacked`, under the queue's hash tag), so an acknowledgement, a
lease renewal and a return each touch one queue's slot.

It replaces kombu's Redis QoS (one in-flight hash per connection) on kombu's virtual QoS: deliveries the fetch
script put in flight are not written again, acknowledgements ride on the next fetch, a delivery goes back to
the queue it was taken from (not wherever the binding table routes its exchange and routing key), the
queue's bell rings when it does, and a lost connection never brings the consumer down (the lease returns
what could not be acknowledged or rejected)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from time import time
from typing import Any

from celery.worker import state
from kombu.transport import virtual
from kombu.transport.redis import Mutex, MutexHeld, logger
from kombu.utils.encoding import bytes_to_str

from taskplane.compat import consumed_queues, message_priority
from taskplane.compat import delivered as delivered_of
from taskplane.core.protocol import Header
from taskplane.redis.client import CONNECTION_ERRORS
from taskplane.redis.publish_ops import queue_items
from taskplane.stores.records import fetched_start

#: Seconds a sweeper holds a queue's sweep mutex at most (kombu's ``unacked_mutex_expire``).
SWEEP_MUTEX_EXPIRE = 300


class QoS(virtual.QoS):
    """kombu's virtual ack emulation with in-flight deliveries kept per queue (see the module)."""

    restore_at_shutdown = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The queue of every delivery this channel holds (its in-flight keys are that queue's).
        self._queues: dict[str, str] = {}

    def queue_of(self, delivery_tag: str) -> str | None:
        """The queue a delivery this channel holds was taken from (None: not this channel's)."""
        return self._queues.get(delivery_tag)

    def append(self, message: Any, delivery_tag: str) -> None:
        """Track a delivered message. Every delivery comes from the fetch script (the consumer's fetch, and
        ``basic_get``: :meth:`taskplane.celery.fetch.LosslessFetch._get`), which put it in flight already."""
        channel: Any = self.channel
        queue = channel._taskplane_fetched.pop(delivery_tag, None)
        if queue is not None:
            self._queues[delivery_tag] = queue
        super().append(message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        """Acknowledge; when Redis is unreachable or the channel already closed (a reconnect), the delivery
        stays in flight and its lease returns it: the consumer must not die on it."""
        queue = self._queues.pop(delivery_tag, None)
        if queue is not None and not self._detached(delivery_tag, "acknowledge"):
            channel: Any = self.channel
            try:
                channel.acknowledge(queue, delivery_tag)  # usually with the next fetch (taskplane.celery.fetch)
            except CONNECTION_ERRORS as exc:
                logger.warning("could not acknowledge %s (%s); it goes with the next fetch", delivery_tag, exc)
        super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        """Reject: back at the head of its queue, or (not requeued) out of flight; when Redis is unreachable
        or the channel closed, its lease returns it."""
        queue = self.queue_of(delivery_tag)
        if queue is not None and not self._detached(delivery_tag, "reject"):
            self.settle_rejected(queue, delivery_tag, requeue)
        self._queues.pop(delivery_tag, None)
        super().ack(delivery_tag)

    def settle_rejected(self, queue: str, delivery_tag: str, requeue: bool) -> None:
        """Put a rejected delivery of ``queue`` back at the head of its queue, or take it out of flight."""
        channel: Any = self.channel
        try:
            if requeue:
                self.restore_by_tag(delivery_tag, leftmost=True, queue=queue)
            else:
                channel.leave_flight(queue, delivery_tag)
        except CONNECTION_ERRORS as exc:
            logger.warning("could not reject %s (%s); its lease returns it", delivery_tag, exc)

    def restore_unacked(self, client: Any = None) -> None:
        """Return every delivery this channel holds to its queue (the channel closes)."""
        with self._client(client) as conn:
            for tag in tuple(delivered_of(self)):
                self.restore_by_tag(tag, conn)
        delivered_of(self).clear()

    def restore_visible(self, start: int = 0, num: int | None = 10, interval: int = 10) -> None:
        """The lease sweep of this channel's queues (:meth:`sweep`), at every call: kombu's poller calls it
        every ``unacked_restore_interval`` s from kombu 5.7 on, every 10 s before. (kombu's own looked only at
        every ``interval``-th call, 10 by default: on kombu 5.5 and 5.6, which do not pass it, a dead worker's
        deliveries waited up to 100 s past their lease.)"""
        self.sweep(consumed_queues(self.channel), start, num)

    def sweep(self, queues: list[str], start: int = 0, num: int | None = None) -> None:
        """Return the deliveries of ``queues`` whose lease ran out, oldest first, at most ``num`` per queue,
        under a mutex per queue. A queue no worker consumes keeps its deliveries in flight until one does
        (its waiting messages wait for that worker too)."""
        channel: Any = self.channel
        keys = channel._keys
        with self._client() as client:
            ceiling = time() - channel.visibility_timeout
            for queue in queues:
                try:
                    with Mutex(client, keys.unacked_mutex(queue), SWEEP_MUTEX_EXPIRE):
                        page = {"offset": start, "num": num} if num else {}
                        expired = client.zrange(keys.unacked_index(queue), "-inf", ceiling, byscore=True, **page)
                        for tag in expired:
                            self.restore_by_tag(bytes_to_str(tag), client, queue=queue)
                except MutexHeld:
                    continue

    def restore_by_tag(self, tag: str, client: Any = None, leftmost: bool = False, queue: str | None = None) -> None:
        """Return one delivery to the queue it was taken from (this channel's, or ``queue``'s when a sweep
        found it), ringing the queue's bell, in one transaction with its leaving flight. An in-flight entry
        that cannot be read (not UTF-8, not JSON to Python: ``nan`` or hex numbers Lua's JSON took, nested too
        deep) is dead-lettered as malformed instead: it would fail every sweep, for ever."""
        queue = queue or self._queues.pop(tag, None)
        if queue is None:
            return  # not this channel's: its lease returns it
        channel: Any = self.channel
        keys = channel._keys
        unacked, index = keys.unacked(queue), keys.unacked_index(queue)
        unrestorable: list[bytes] = []

        def restore(pipe: Any) -> None:
            entry = pipe.hget(unacked, tag)
            message = _restorable(entry) if entry is not None else None
            pipe.multi()
            if entry is not None and message is None:
                unrestorable.append(entry)  # dead-lettered before it leaves flight
                return
            pipe.hdel(unacked, tag).zrem(index, tag)
            if message is not None:
                for where in (message.get("headers"), (message.get("properties") or {}).get("delivery_info")):
                    if isinstance(where, dict):
                        where["redelivered"] = True
                listed = keys.queue(queue, message_priority(channel, message))
                queue_items(pipe, listed, keys.bell(queue), [json.dumps(message)], head=leftmost)

        with self._client(client) as conn:
            conn.transaction(restore, unacked)
        if unrestorable:
            channel.bury_unrestorable(queue, tag, unrestorable[0])

    @contextmanager
    def _client(self, client: Any = None) -> Iterator[Any]:
        channel: Any = self.channel
        with channel.conn_or_acquire(client) as conn:
            yield conn

    def _detached(self, delivery_tag: str, what: str) -> bool:
        """True when this channel lost its connection (its deliveries are left to their leases)."""
        channel: Any = self.channel
        if channel.connection is not None and channel.connection.client is not None:
            return False
        logger.warning("cannot %s %s on a closed channel; its lease returns it", what, delivery_tag)
        return True

    def restore_unacked_once(self, stderr: Any = None) -> Any:
        """Return this channel's deliveries to their queues at close; when the connection is already gone
        (Redis restarted or unreachable), leave them to their leases instead of failing the close: kombu
        then raises from deep inside ``Channel.close`` and the worker stops."""
        try:
            channel: Any = self.channel
            channel.flush_acks()  # what finished must not be restored
            channel.return_held()  # fetched ahead for a process that will not free now
            unstarted = self._unstarted()
            restored = super().restore_unacked_once(stderr)
        except Exception as exc:
            delivered: Any = delivered_of(self)
            logger.warning(
                "could not return %d delivery(ies) at close (%s: %s); their leases return them",
                len(delivered or ()),
                type(exc).__name__,
                exc,
            )
            if delivered:
                delivered.clear()  # kombu asserts a restored state is empty
            return None
        if unstarted:
            try:
                channel._records().unstart(unstarted)
            except Exception as exc:
                logger.warning("could not undo the start of %d returned messages: %s", len(unstarted), exc)
        return restored

    def _unstarted(self) -> list[tuple[str, str, str]]:
        """The tasks (id, name, queue) whose deliveries this close returns to their queues while their records
        say they run: those this channel's fetch started that no process of this worker took up, and, when
        the worker stops for good (a cold shutdown: the bound on draining ran out, or one was asked for), the
        running ones too, whose processes end now. Their records say queued again (``unstart``)."""
        delivered: Any = delivered_of(self)
        channel: Any = self.channel
        if (
            not delivered
            or not self.restore_at_shutdown
            or not channel.do_restore
            or getattr(delivered, "restored", None)
        ):
            return []  # kombu restores nothing: the leases return them, as if the worker had died
        stopping = bool(state.should_terminate)
        running = set() if stopping else {request.id for request in tuple(state.active_requests)}
        tasks = []
        for tag, message in tuple(delivered.items()):
            headers = getattr(message, "headers", None) or {}
            started = fetched_start(headers.get(Header.STARTED.value))
            if (stopping or (started is not None and started[0] == "run")) and headers.get("id") not in running:
                queue = self._queues.get(tag) or (getattr(message, "delivery_info", None) or {}).get("routing_key")
                tasks.append((str(headers["id"]), str(headers.get("task")), str(queue)))
        return tasks


def _restorable(entry: bytes | str) -> dict[str, Any] | None:
    """The message of an in-flight entry (``[message, exchange, routing key]`` as JSON text), or None if it
    cannot be read back."""
    try:
        message, _, _ = json.loads(entry)
    except (ValueError, TypeError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return message if isinstance(message, dict) else None
