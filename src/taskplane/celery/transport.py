"""kombu Redis transport with taskplane's broker-side behaviour, selected by ``broker_transport``.

- A message with a future ``eta`` (countdown, ETA, retry, rate-limit wait) is kept in the queue's
  delayed set instead of the queue; the worker never holds it in memory. The ``eta`` header is
  removed, so a worker runs a message as soon as it is delivered.
- A message larger than the payload limit is refused with a one-line error.
- A requeue from a dead-letter queue leaves the dead-letter queue in the same step as it enters
  the queue (a message is never in both places, nor in neither).
- A message goes out with the publish hooks' writes (its record, a claim) in one atomic
  ``publish.lua`` call: one round trip, both or neither.
- A message leaves its queue only in the same atomic step that puts it in flight under a lease
  (:mod:`taskplane.celery.fetch`); every publish rings the queue's bell so idle consumers wake at once.
- A queue item that is not a kombu message is dead-lettered as ``malformed`` instead of breaking
  the consumer.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import redis
from kombu.exceptions import InconsistencyError
from kombu.transport import redis as kombu_redis

from taskplane.celery.fetch import REFUSED_PAUSE, LosslessFetch
from taskplane.celery.lane import Lane
from taskplane.celery.publishing import pending_writes
from taskplane.celery.puts import ScriptedPublish, eta_delay
from taskplane.celery.qos import QoS
from taskplane.compat import message_priority, new_client
from taskplane.core.backoff import Backoff
from taskplane.core.protocol import DeadReason, Header, TransportOption
from taskplane.middleware.failure import FailurePath
from taskplane.redis.client import REFUSAL_ERRORS
from taskplane.redis.keys import Keys
from taskplane.redis.publish_ops import queue_items
from taskplane.redis.scripts import script_command
from taskplane.redis.storage import Storage
from taskplane.stores.dead_letters import DeadLetterCap
from taskplane.stores.records import RecordStore
from taskplane.stores.requeue import Requeue

#: Bytes a queued message may carry around its body (headers, properties) beyond the payload limit.
ENVELOPE_ALLOWANCE = 64 * 1024


#: A fetched message due further away than this (seconds) waits in the delayed store, not in a worker.
DEFER_AFTER = 10.0


class Channel(ScriptedPublish, LosslessFetch, kombu_redis.Channel):
    """Redis channel with lossless fetch, the delayed store, payload limit, atomic requeue and the
    malformed-item guard."""

    QoS = QoS  # type: ignore[assignment]  # per queue, on kombu's virtual QoS (not its Redis one)

    _taskplane_client: Any = None
    _taskplane_failure: FailurePath | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._taskplane_fetched = {}
        self._taskplane_held = []
        self._taskplane_lane = Lane()
        self._taskplane_acks = self._taskplane_lane.acks
        self._taskplane_pause = Backoff(*REFUSED_PAUSE)
        super().__init__(*args, **kwargs)
        # kombu's own key prefixing off: every name this channel gives kombu is under the prefix already
        # (kombu 5.7's binding sweep would otherwise prefix some twice and read others bare).
        self.global_keyprefix = ""

    @contextlib.contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """One client per channel pool: kombu builds a new redis.Redis (about 0.25 ms) for every publish."""
        if client:
            yield client
            return
        channel: Any = self  # kombu's private methods are not in its type stubs
        cached = self._taskplane_client
        if cached is None or cached.connection_pool is not channel.pool:  # the pool is replaced on reconnect
            cached = self._taskplane_client = new_client(channel)
        yield cached

    @property
    def _options(self) -> dict[str, Any]:
        client = self.connection.client
        return dict(client.transport_options or {}) if client is not None else {}

    @property
    def _keys(self) -> Keys:
        keys: Keys | None = self.__dict__.get("_taskplane_keys")  # the options do not change for a channel
        if keys is None:
            keys = self.__dict__["_taskplane_keys"] = Keys(self._options.get(TransportOption.PREFIX, "taskplane:"))
        return keys

    def _q_for_pri(self, queue: str, pri: int) -> str:
        """The list of ``queue``'s messages of priority ``pri``, under the app's prefix (:meth:`Keys.queue`):
        kombu's own uses (size, purge, delete) and taskplane's name the same lists."""
        channel: Any = self  # kombu's private methods are not in its type stubs
        return self._keys.queue(queue, int(channel.priority(pri)))

    def _get_client(self) -> Any:
        """redis-py's client as it is: every key taskplane's channel uses is named under the prefix already
        (kombu would rewrite some commands' keys for ``global_keyprefix``, and not those of scripts)."""
        return redis.Redis

    def _lookup(self, exchange: str, routing_key: str, default: Any = None) -> list[str]:
        """kombu's binding lookup; with no binding table (flushed, or a server restored from an older
        snapshot), a direct exchange named as its routing key (every taskplane queue) routes to that queue:
        kombu restored a returned delivery to no queue at all then (lost)."""
        try:
            queues = list(super()._lookup(exchange, routing_key, default))
        except InconsistencyError:
            queues = []
        return [routing_key] if not queues and exchange and exchange == routing_key else queues

    @property
    def keyprefix_queue(self) -> str:  # type: ignore[override]  # kombu reads it, never sets it
        """kombu's binding tables under the app's prefix (as ``global_keyprefix`` names them)."""
        return self._keys.prefix + "_kombu.binding.%s"

    @property
    def keyprefix_binding_permanent(self) -> str:
        """kombu 5.7's sets of a binding table's members that never expire, under the app's prefix."""
        return self._keys.prefix + "_kombu.binding_permanent.%s"

    @property
    def keyprefix_binding_deadlines(self) -> str:
        """kombu 5.7's deadlines of expiring binding tables (what its sweep reads), under the app's prefix."""
        return self._keys.prefix + "_kombu.binding_deadlines"

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        pending = pending_writes.get()
        requeues = Header.REQUEUE.value in (message.get("headers") or {})
        if not requeues and (pending is None or pending.batch.publishable):
            self.publish_many(queue, [message], pending)
            return
        header, delay, payload = self._prepare(queue, message)
        requeue = Requeue.of(header) if header is not None else None
        across = requeue is not None and requeue.across(queue)  # two steps, in two slots (stores/requeue.py)
        keys = self._keys
        channel: Any = self  # kombu's private methods are not in its type stubs
        listed = self._q_for_pri(queue, message_priority(channel, message))  # its priority's list
        target = keys.delayed(queue) if delay > 0 else listed
        with self.conn_or_acquire() as client:
            if requeue is not None and across:
                requeue.check(client, keys)  # nothing is sent for a letter that is gone
            # One MULTI/EXEC: the record and counts written by the publish hooks land with the message,
            # or neither does (also when the reply is lost: EXEC runs whole on the server).
            pipe = client.pipeline(transaction=True)
            if pending is not None:
                pending.batch.replay(pipe)
            if requeue is not None and not across:
                requeue.take(pipe, keys, queue, target, payload, delay)
            elif delay > 0:
                pipe.execute_command(*script_command("delayed_add", [target], [repr(delay), payload], source=True))
            else:
                queue_items(pipe, listed, keys.bell(queue), [payload])
            replies = pipe.execute()
            if pending is not None:
                pending.sent = True
            if requeue is not None and across:
                requeue.leave(client, keys, queue)
            elif requeue is not None and not replies[-1]:
                raise requeue.gone()

    def _payload_limit(self) -> int:
        # The body limit plus room for the envelope (headers, properties) around it.
        limit = int(self._options.get(TransportOption.MAX_PAYLOAD, 0) or 0)
        return limit + ENVELOPE_ALLOWANCE if limit else 0

    def _signing_keys(self) -> list[str]:
        return list(self._options.get(TransportOption.SIGNING_KEYS) or [])

    def _start_options(self) -> tuple[str, list[str], int] | None:
        options = self._options
        start = options.get(TransportOption.FETCH_START)
        if not start or self._signing_keys():  # signed messages are started after their signature is verified
            return None
        worker, limited = start
        return str(worker), list(limited), self._retention()

    def _hold_for(self) -> float:
        return float(self._options.get(TransportOption.LOOKAHEAD_MS, 0) or 0) / 1000

    def _retention(self) -> int:
        return int(self._options.get(TransportOption.RECORD_RETENTION, 7 * 24 * 3600))

    def _forged(self, queue: str, item: str, message: dict[str, Any], tag: str) -> None:
        headers = message.get("headers") or {}
        claimed = f"task {headers.get('task')!r} id {headers.get('id')!r}"
        why = f"unsigned or wrongly signed message ({claimed}); message signing is on"
        self._refuse(DeadReason.FORGED, "ForgedMessage", queue, item, tag, why)

    def _deferred(self, queue: str, message: dict[str, Any], tag: str) -> bool:
        """A message whose Celery ``eta`` is more than :data:`DEFER_AFTER` seconds away (pushed around the
        producer, or by a plain Celery client) goes to its queue's delayed store until it is due, in one
        MULTI/EXEC with its leaving flight, instead of waiting in a worker's memory under a lease renewed
        until then (a year-9999 ``eta`` did, for ever); True if so."""
        eta = (message.get("headers") or {}).get("eta")
        delay = eta_delay(eta) if eta else 0.0
        if delay <= DEFER_AFTER:
            return False
        _, _, payload = self._prepare(queue, message)  # as a publish stores it: x-taskplane-eta, ready, signed
        keys = self._keys
        with self.conn_or_acquire() as client:
            pipe = client.pipeline(transaction=True)
            pipe.hdel(keys.unacked(queue), tag).zrem(keys.unacked_index(queue), tag)
            add = script_command("delayed_add", [keys.delayed(queue)], [repr(delay), payload], source=True)
            pipe.execute_command(*add)
            pipe.execute()
        return True

    def _invalid(self, queue: str, item: str, message: dict[str, Any], tag: str, problem: str) -> None:
        self._refuse(DeadReason.MALFORMED, "MalformedMessage", queue, item, tag, problem)

    def _refuse(self, reason: DeadReason, kind: str, queue: str, item: str, tag: str, why: str) -> None:
        """Dead-letter a message in flight without running it, then take it out of flight."""
        self._failure().bury(
            reason,
            task_id=f"{reason}-" + hashlib.sha256(item.encode()).hexdigest()[:24],
            name="",  # the names in a refused message are not to be trusted, nor written to a record
            queue=queue,
            attempts=0,
            exception_type=kind,
            message=why,
            raw=item,
        )
        self.leave_flight(queue, tag)
        kombu_redis.crit("dead-lettered a %s message from queue %r: %s", reason, queue, why)

    def bury_unrestorable(self, queue: str, tag: str, entry: bytes) -> None:
        """Dead-letter an in-flight entry of ``queue`` that cannot be read back
        (:meth:`taskplane.celery.qos.QoS.restore_by_tag`) with its bytes, then take it out of flight."""
        self._failure().bury_malformed(queue, entry)
        self.leave_flight(queue, tag)
        kombu_redis.crit("dead-lettered an in-flight entry of %r that cannot be restored (%d bytes)", queue, len(entry))

    def leave_flight(self, queue: str, tag: str) -> None:
        """Take a delivery of ``queue`` out of flight (its unacked entry and lease): dead-lettered, or rejected."""
        keys = self._keys
        with self.conn_or_acquire() as client:
            client.pipeline().hdel(keys.unacked(queue), tag).zrem(keys.unacked_index(queue), tag).execute()

    def _quarantined(self, queue: str, item: str | bytes, tag: str | None = None) -> None:
        self._failure().bury_malformed(queue, item)
        if tag:
            self.leave_flight(queue, tag)
        kombu_redis.crit("dead-lettered a malformed item from queue %r (%d bytes)", queue, len(item))

    def _failure(self) -> FailurePath:
        """The failure path over this channel's :meth:`_storage` (built on first use)."""
        if self._taskplane_failure is None:
            storage = self._storage()
            self._taskplane_failure = FailurePath(
                lambda: storage,
                self._retention(),
                DeadLetterCap(
                    int(self._options.get(TransportOption.DEAD_LETTER_CAP, 100_000)),
                    int(self._options.get(TransportOption.DEAD_LETTER_MAX_BYTES, 256 * 1024 * 1024)),
                ),
            )
        return self._taskplane_failure

    def _storage(self) -> Storage:
        """taskplane's stores' access over a decoding client to this channel's server (built on first use)."""
        storage: Storage | None = self.__dict__.get("_taskplane_storage")
        if storage is None:
            channel: Any = self  # kombu's private attributes are not in its type stubs
            pool = channel.pool
            decoding = redis.ConnectionPool(
                connection_class=pool.connection_class, **{**pool.connection_kwargs, "decode_responses": True}
            )
            storage = self.__dict__["_taskplane_storage"] = Storage(redis.Redis(connection_pool=decoding), self._keys)
        return storage

    def _records(self) -> RecordStore:
        records: RecordStore | None = self.__dict__.get("_taskplane_records")
        if records is None:
            records = self.__dict__["_taskplane_records"] = RecordStore(self._storage(), self._retention())
        return records


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel
    #: kombu's, and a server refusing writes (full, a replica): Celery's consumer then reconnects and waits
    #: with its back-off, as for a lost connection, instead of stopping the worker.
    connection_errors = (*kombu_redis.Transport.connection_errors, *REFUSAL_ERRORS)
    #: The worker's event loop, once registered (the channels' timers for held messages run on it).
    taskplane_hub: Any = None

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        """kombu's, keeping the event loop for :meth:`Channel._hold`."""
        self.taskplane_hub = loop
        super().register_with_event_loop(connection, loop)
