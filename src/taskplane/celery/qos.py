"""kombu's Redis ack emulation (QoS) as taskplane's transport needs it: deliveries the fetch script put in
flight are not written again, acknowledgements ride on the next fetch, and a lost connection never
brings the consumer down (the lease returns what could not be acknowledged or rejected)."""

from __future__ import annotations

import json
from typing import Any

from celery.worker import state
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str

from taskplane.compat import delivered as delivered_of
from taskplane.core.protocol import Header
from taskplane.redis.client import CONNECTION_ERRORS
from taskplane.stores.records import fetched_start


class QoS(kombu_redis.QoS):
    """kombu's ack emulation; a message the fetch script already put in flight is not written again."""

    def append(self, message: Any, delivery_tag: str) -> None:
        """Track a delivered message (and put it in flight, unless the fetch script did)."""
        channel: Any = self.channel
        fetched: set[str] = channel._taskplane_fetched
        if delivery_tag in fetched:
            fetched.discard(delivery_tag)
            virtual.QoS.append(self, message, delivery_tag)
            return
        super().append(message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        """Acknowledge; when Redis is unreachable or the channel already closed (a reconnect), the delivery
        stays in flight and its lease returns it: the consumer must not die on it."""
        if self._detached(delivery_tag, "acknowledge"):
            return
        channel: Any = self.channel
        try:
            channel.acknowledge(delivery_tag)  # usually with the next fetch (taskplane.celery.fetch)
        except CONNECTION_ERRORS as exc:
            kombu_redis.logger.warning("could not acknowledge %s (%s); it goes with the next fetch", delivery_tag, exc)
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        """Reject (and requeue); when Redis is unreachable or the channel closed, the lease returns it."""
        if self._detached(delivery_tag, "reject"):
            return
        try:
            super().reject(delivery_tag, requeue)
        except CONNECTION_ERRORS as exc:
            kombu_redis.logger.warning("could not reject %s (%s); its lease returns it", delivery_tag, exc)
            virtual.QoS.ack(self, delivery_tag)

    def restore_by_tag(self, tag: Any, client: Any = None, leftmost: bool = False) -> None:
        """Return one delivery to its queue (kombu's lease sweep and close call this); an in-flight entry
        kombu cannot read (not UTF-8, not JSON to Python: ``nan`` or hex numbers Lua's JSON took, nested too
        deep) is dead-lettered as malformed instead: kombu's read raised, on every sweep, for ever."""
        channel: Any = self.channel
        with channel.conn_or_acquire(client) as conn:
            entry = conn.hget(self.unacked_key, tag)
        if entry is None or _restorable(entry):
            super().restore_by_tag(tag, client, leftmost)
            return
        channel.bury_unrestorable(bytes_to_str(tag), entry)

    def _detached(self, delivery_tag: str, what: str) -> bool:
        """True (after dropping the tag from the books) when this channel lost its connection."""
        channel: Any = self.channel
        if channel.connection is not None and channel.connection.client is not None:
            return False
        kombu_redis.logger.warning("cannot %s %s on a closed channel; its lease returns it", what, delivery_tag)
        virtual.QoS.ack(self, delivery_tag)
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
            kombu_redis.logger.warning(
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
                kombu_redis.logger.warning("could not undo the start of %d returned messages: %s", len(unstarted), exc)
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
        for message in tuple(delivered.values()):
            headers = getattr(message, "headers", None) or {}
            started = fetched_start(headers.get(Header.STARTED.value))
            if (stopping or (started is not None and started[0] == "run")) and headers.get("id") not in running:
                queue = (getattr(message, "delivery_info", None) or {}).get("routing_key")
                tasks.append((str(headers["id"]), str(headers.get("task")), str(queue)))
        return tasks


def _restorable(entry: bytes | str) -> bool:
    """True if kombu can read an in-flight entry (``[message, exchange, routing key]`` as JSON text)."""
    try:
        message, _, _ = json.loads(entry)
    except (ValueError, TypeError, RecursionError):  # UnicodeDecodeError is a ValueError
        return False
    return isinstance(message, dict)
