"""kombu Redis transport with taskplane's broker-side behaviour, selected by ``broker_transport``.

- A message with a future ``eta`` (countdown, ETA, retry, rate-limit wait) is kept in the queue's
  delayed set instead of the queue; the worker never holds it in memory. The ``eta`` header is
  removed, so a worker runs a message as soon as it is delivered.
- A message larger than the payload limit is refused with a one-line error.
- A requeue from a dead-letter queue leaves the dead-letter queue in the same step as it enters
  the queue (a message is never in both places, nor in neither).
- A queue item that is not a kombu message is dead-lettered as ``malformed`` instead of breaking
  the consumer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import Empty
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from taskplane.core.clock import now_ms
from taskplane.core.errors import NotFoundError, PayloadTooLargeError
from taskplane.core.protocol import DeadReason, Header, TransportOption
from taskplane.middleware.failure import FailurePath
from taskplane.redis.keys import Keys
from taskplane.redis.scripts import Scripts
from taskplane.redis.storage import Storage


def eta_delay(eta: object, now: float | None = None) -> float:
    """Seconds from now until the ISO-8601 ``eta`` (negative when past); 0 when it cannot be read."""
    if not isinstance(eta, str):
        return 0.0
    try:
        due = datetime.fromisoformat(eta)
    except ValueError:
        return 0.0
    if due.tzinfo is None:
        return 0.0
    return due.timestamp() - (time.time() if now is None else now)


def is_kombu_message(message: object) -> bool:
    """True if ``message`` has the shape kombu's Redis transport delivers."""
    if not isinstance(message, dict) or not isinstance(message.get("body"), str):
        return False
    properties = message.get("properties")
    return (
        isinstance(properties, dict)
        and "delivery_tag" in properties
        and isinstance(properties.get("delivery_info"), dict)
        and isinstance(message.get("headers", {}), dict)
    )


class Channel(kombu_redis.Channel):
    """Redis channel with the delayed store, payload limit, atomic requeue and malformed-item guard."""

    _taskplane_scripts: Scripts | None = None
    _taskplane_client: Any = None
    _taskplane_failure: FailurePath | None = None

    @contextlib.contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """One client per channel pool: kombu builds a new redis.Redis (about 0.25 ms) for every publish."""
        if client:
            yield client
            return
        channel: Any = self  # kombu's private methods are not in its type stubs
        cached = self._taskplane_client
        if cached is None or cached.connection_pool is not channel.pool:  # the pool is replaced on reconnect
            cached = self._taskplane_client = channel._create_client()
        yield cached

    @property
    def _options(self) -> dict[str, Any]:
        client = self.connection.client
        return dict(client.transport_options or {}) if client is not None else {}

    @property
    def _keys(self) -> Keys:
        return Keys(self._options.get(TransportOption.PREFIX, "taskplane:"))

    def _scripts(self, client: Any) -> Scripts:
        if self._taskplane_scripts is None:
            self._taskplane_scripts = Scripts(client)
        return self._taskplane_scripts

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        headers = message.get("headers") or {}
        limit = int(self._options.get(TransportOption.MAX_PAYLOAD, 0) or 0)
        if limit and len(message.get("body", "")) > limit:
            raise PayloadTooLargeError(
                f"task message for queue {queue!r} is {len(message['body'])} bytes; the limit is {limit} "
                "(TASKPLANE_MAX_PAYLOAD_BYTES)"
            )
        requeue = headers.pop(Header.REQUEUE, None)
        delay = eta_delay(headers.pop("eta", None)) if "eta" in headers else 0.0
        if isinstance(message.get("headers"), dict):
            message["headers"][Header.READY.value] = now_ms() + int(max(delay, 0.0) * 1000)
        if requeue is None and delay <= 0:
            super()._put(queue, message, **kwargs)
            return
        payload = dumps(message)
        keys = self._keys
        with self.conn_or_acquire() as client:
            scripts = self._scripts(client)
            if requeue is None:
                scripts.run("delayed_add", keys=[keys.delayed(queue)], args=[repr(delay), payload], client=client)
                return
            dead_queue, letter_id = json.loads(requeue)
            target = keys.delayed(queue) if delay > 0 else queue
            taken = scripts.run(
                "dead_take",
                keys=[keys.dead_index(dead_queue), keys.dead_items(dead_queue), target],
                args=[letter_id, payload, "delayed" if delay > 0 else "list", repr(max(delay, 0.0))],
                client=client,
            )
            if not taken:
                raise NotFoundError(f"dead letter {letter_id} is no longer in {dead_queue} (requeued or purged)")

    def _brpop_read(self, **options: Any) -> bool:
        channel: Any = self  # kombu's private attributes are not in its type stubs
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except channel.connection_errors:
                self.client.connection.disconnect()
                raise
            if not dest__item:
                raise Empty()
            dest, item = dest__item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            channel._queue_cycle.rotate(dest)
            text = bytes_to_str(item)
            try:
                message = loads(text)
            except ValueError:
                message = None
            if not is_kombu_message(message):
                self._dead_letter_malformed(dest, text)
                raise Empty()
            self.connection._deliver(message, dest)
            return True
        finally:
            self._in_poll = None
            channel._flush_brpop_reauth()

    def _dead_letter_malformed(self, queue: str, text: str) -> None:
        self._failure().bury(
            DeadReason.MALFORMED,
            task_id="malformed-" + hashlib.sha256(text.encode()).hexdigest()[:24],
            name="",
            queue=queue,
            attempts=0,
            exception_type="MalformedMessage",
            message="queue item is not a kombu message (not JSON, or missing body/properties)",
            raw=text,
        )
        kombu_redis.crit("dead-lettered a malformed item from queue %r (%d bytes)", queue, len(text))

    def _failure(self) -> FailurePath:
        """The failure path over a decoding client to this channel's server (built on first use)."""
        if self._taskplane_failure is None:
            channel: Any = self  # kombu's private attributes are not in its type stubs
            pool = channel.pool
            decoding = redis.ConnectionPool(
                connection_class=pool.connection_class, **{**pool.connection_kwargs, "decode_responses": True}
            )
            storage = Storage(redis.Redis(connection_pool=decoding), self._keys)
            options = self._options
            self._taskplane_failure = FailurePath(
                lambda: storage,
                int(options.get(TransportOption.RECORD_RETENTION, 7 * 24 * 3600)),
                int(options.get(TransportOption.DEAD_LETTER_CAP, 100_000)),
            )
        return self._taskplane_failure


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel
