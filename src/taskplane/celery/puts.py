"""How taskplane's Redis channel queues messages: each with the publish hooks' writes (its record, its sent
count) in one atomic ``publish.lua`` call, and a batch enqueue's messages many per call.

- A message with a future ``eta`` (countdown, ETA, retry, rate-limit wait) goes to the queue's delayed
  set instead of the queue, due by the server's clock; its ``eta`` header is removed.
- A message larger than the payload limit is refused with a one-line error.
- Every message is stamped with the time it is ready, and signed when signing keys are set.
- Every publish rings the queue's bell so idle consumers wake at once.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import redis
from kombu.utils.json import dumps

from taskplane.celery.message import MessageTemplate
from taskplane.celery.publishing import PendingWrites
from taskplane.compat import message_priority, pool_connection
from taskplane.core.clock import now_ms
from taskplane.core.errors import PayloadTooLargeError
from taskplane.core.protocol import Header, TransportOption
from taskplane.core.signing import sign
from taskplane.redis.batch import publish_command
from taskplane.redis.client import CONNECTION_ERRORS
from taskplane.redis.keys import BELL_CAP, Keys
from taskplane.redis.publish_ops import collected_publishes, publish_bell, publish_delayed
from taskplane.redis.scripts import run_script, run_script_on


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


class ScriptedPublish:
    """Mixin for :class:`taskplane.celery.transport.Channel` (needs kombu's Redis channel under it)."""

    #: Set by an owner that lets one thread at a time use the channel (``ChannelPool``): its publishes
    #: then go on one Redis connection it keeps, not through redis-py's client.
    exclusive = False
    _taskplane_link: Any = None
    _taskplane_link_pool: Any = None

    @property
    def _options(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def _keys(self) -> Keys:
        raise NotImplementedError

    def _signing_keys(self) -> list[str]:
        raise NotImplementedError

    def conn_or_acquire(self, client: Any = None) -> Any:
        raise NotImplementedError

    def _prepare(self, queue: str, message: dict[str, Any]) -> tuple[Any, float, str]:
        """Check a message's size, stamp when it is ready, sign it and encode it: (the dead letter it
        requeues or None, its delay in seconds, its payload).

        Raises:
            PayloadTooLargeError: the body is over the payload limit.
        """
        headers = message.get("headers") or {}
        self._check_size(queue, len(message.get("body", "")))
        requeue = headers.pop(Header.REQUEUE, None)
        eta = headers.pop("eta", None)
        delay = eta_delay(eta) if eta else 0.0
        if isinstance(message.get("headers"), dict):
            message["headers"][Header.READY.value] = now_ms() + int(max(delay, 0.0) * 1000)
            if eta:
                message["headers"][Header.ETA.value] = eta
            signing = self._signing_keys()
            if signing:
                priority = (message.get("properties") or {}).get("priority")
                signature = sign(message.get("body", ""), message["headers"], signing[0], queue, priority)
                message["headers"][Header.SIGNATURE.value] = signature
        return requeue, delay, dumps(message)

    def _check_size(self, queue: str, size: int) -> None:
        """Refuse a message body over the payload limit.

        Raises:
            PayloadTooLargeError: it is.
        """
        limit = int(self._options.get(TransportOption.MAX_PAYLOAD, 0) or 0)
        if limit and size > limit:
            raise PayloadTooLargeError(
                f"task message for queue {queue!r} is {size} bytes; the limit is {limit} (TASKPLANE_MAX_PAYLOAD_BYTES)"
            )

    def publish_many(self, queue: str, messages: list[dict[str, Any]], pending: PendingWrites | None) -> None:
        """Queue ``messages`` (all for ``queue``) with the writes ``pending`` holds in one ``publish.lua``
        call (collected when a batch enqueue collects them), ringing the bell once.

        Raises:
            PayloadTooLargeError: a message is over the payload limit (nothing was sent).
        """
        # One LPUSH (or ZADD) per target: messages of one ETA share the delay of the first of them.
        groups: dict[tuple[str, Any], tuple[float, list[str]]] = {}
        for message in messages:
            eta = (message.get("headers") or {}).get("eta")
            _, delay, payload = self._prepare(queue, message)
            target = self._keys.delayed(queue) if delay > 0 else self._list_of(queue, message)
            groups.setdefault((target, eta if delay > 0 else None), (delay, []))[1].append(payload)
        self._send_payloads(queue, [(target, *group) for (target, _), group in groups.items()], pending)

    def publish_template(
        self,
        queue: str,
        template: MessageTemplate,
        items: list[tuple[str, list[Any], dict[str, Any]]],
        pending: PendingWrites | None,
    ) -> None:
        """Queue one message of ``template`` per (task id, args, kwargs) of ``items`` as :meth:`publish_many`
        does, encoding them from the template (:class:`MessageEncoder`) unless they are signed.

        Raises:
            PayloadTooLargeError: a message is over the payload limit (nothing was sent).
        """
        if self._signing_keys():  # each message is signed by itself
            self.publish_many(queue, [template.message(*item)[0] for item in items], pending)
            return
        eta = template.headers.get("eta")
        delay = eta_delay(eta) if eta else 0.0
        ready = now_ms() + int(max(delay, 0.0) * 1000)
        encoder = template.encoder
        payloads = []
        for task_id, args, kwargs in items:
            payload, size = encoder.encode(task_id, args, kwargs, ready)
            self._check_size(queue, size)
            payloads.append(payload)
        target = self._keys.delayed(queue) if delay > 0 else self._list_of(queue, {"properties": template.properties})
        self._send_payloads(queue, [(target, delay, payloads)], pending)

    def _run_publish(self, script_keys: list[str], argv: list[Any]) -> Any:
        """One ``publish.lua`` call: on the kept connection of an exclusive channel (through redis-py's
        client, which retries, if that connection broke), else through the client."""
        if self.exclusive:
            channel: Any = self  # kombu's pool property is not in its type stubs
            pool = channel.pool
            link = self._taskplane_link
            if link is None or self._taskplane_link_pool is not pool:  # kombu replaces the pool on reconnect
                link, self._taskplane_link_pool = pool_connection(pool), pool
                self._taskplane_link = link
            try:
                return run_script_on(link, "publish", script_keys, argv)
            except CONNECTION_ERRORS as exc:
                self._taskplane_link = None
                pool.release(link)
                if isinstance(exc, redis.TimeoutError):  # sent, no reply in time: not sent again (see direct._put)
                    raise
        with self.conn_or_acquire() as client:
            return run_script(client, "publish", script_keys, argv)

    def _list_of(self, queue: str, message: dict[str, Any]) -> str:
        """The list of ``queue`` for the message's priority (kombu's priority steps)."""
        channel: Any = self  # kombu's private methods are not in its type stubs
        return str(channel._q_for_pri(queue, message_priority(channel, message)))

    def _send_payloads(
        self, queue: str, groups: list[tuple[str, float, list[str]]], pending: PendingWrites | None
    ) -> None:
        """One ``publish.lua`` call: the writes ``pending`` holds, then each group's payloads (target list,
        or delayed set when the delay is positive), then the queue's bell; note on ``pending`` that its
        writes went out, and which claim was found taken (then nothing was written). Collected instead
        when a batch enqueue collects publishes."""
        if pending is not None:
            pending.guard(self._keys.sent(queue, pending.nonce))
        script_keys, argv = pending.batch.as_publish() if pending is not None else ([], [0])
        for target, delay, payloads in groups:
            if delay > 0:
                publish_delayed(script_keys, argv, target, delay, *payloads)
            else:
                publish_command(script_keys, argv, "LPUSH", target, *payloads)
        publish_bell(script_keys, argv, self._keys.bell(queue), BELL_CAP)
        collected = collected_publishes.get()
        if collected is not None:  # its reply comes when the batch's chunk is sent
            collected.append((script_keys, argv, None if pending is None else pending.note_reply))
        else:
            reply = self._run_publish(script_keys, argv)
            if pending is not None:
                pending.note_reply(reply)
        if pending is not None:
            pending.sent = True
