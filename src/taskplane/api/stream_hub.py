"""One Redis subscription per API process, shared by every open event stream, and the limits on them.

A stream asks the hub for its task's channel; the first stream of a channel subscribes it on the hub's
one pub/sub connection, the last one to leave unsubscribes it. One reader passes each message to the
queues of the streams of its channel. Streams are counted per API key and in all: past a limit a new
stream is refused (429) at once, so a client opening streams without end costs no Redis connection
and leaves the API answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import redis.asyncio

from taskplane.core.cluster_url import parse_cluster_url
from taskplane.redis.client import CONNECT_TIMEOUT, CONNECTION_ERRORS, SOCKET_TIMEOUT
from taskplane.redis.cluster_url import connect_cluster_async, node_options

log = logging.getLogger("taskplane.api")

#: How the hub's connections are made.
OPTIONS: dict[str, Any] = {
    "decode_responses": True,
    "socket_connect_timeout": CONNECT_TIMEOUT,
    "socket_timeout": SOCKET_TIMEOUT,
    "socket_keepalive": True,
}
#: Messages a slow stream may fall behind by; older ones are dropped (the stream re-reads the record).
QUEUE_SIZE = 64


class TooManyStreams(Exception):
    """A limit on open event streams was reached (per key or in all)."""


class StreamHub:
    """The event streams of one API process: one pub/sub connection, and at most ``per_key`` streams per
    API key and ``total`` in all."""

    def __init__(self, redis_url: str, per_key: int, total: int) -> None:
        self.redis_url = redis_url
        self.per_key = per_key
        self.total = total
        self._open: dict[str, int] = {}
        self._queues: dict[str, set[asyncio.Queue[str]]] = {}
        self._left: set[str] = set()  # channels whose last stream ended: the reader unsubscribes them
        self._client: Any = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def client(self) -> Any:
        """The async client the streams read records with (one pool for all of them; a cluster client for a
        cluster URL)."""
        if self._client is None:
            cluster = parse_cluster_url(self.redis_url)
            if cluster is not None:
                self._client = connect_cluster_async(cluster, **OPTIONS)
            else:
                self._client = redis.asyncio.Redis.from_url(self.redis_url, **OPTIONS)
        return self._client

    async def _subscriber(self) -> Any:
        """The client the hub subscribes with: its own, or on a cluster a client of one of the cluster's nodes
        (a cluster forwards every ``PUBLISH`` to all its nodes)."""
        cluster = parse_cluster_url(self.redis_url)
        if cluster is None:
            return self.client
        await self.client.initialize()
        node = self.client.get_default_node()
        return redis.asyncio.Redis(host=node.host, port=node.port, **node_options(cluster, OPTIONS))

    def check(self, owner: str) -> None:
        """Refuse a new stream of ``owner`` at once when a limit is reached.

        Raises:
            TooManyStreams: ``owner`` has ``per_key`` streams open, or the process ``total``.
        """
        if self._open.get(owner, 0) >= self.per_key:
            raise TooManyStreams(f"this API key has {self.per_key} event streams open (the limit per key)")
        if self.open_streams >= self.total:
            raise TooManyStreams(f"{self.total} event streams are open (the limit of this API process)")

    @property
    def open_streams(self) -> int:
        """How many streams are open now."""
        return sum(self._open.values())

    @contextlib.contextmanager
    def place(self, owner: str) -> Iterator[None]:
        """Count one stream of ``owner`` while the block runs (taken at once, so a flood of requests cannot
        all pass the check before any of them counts).

        Raises:
            TooManyStreams: ``owner`` has ``per_key`` streams open, or the process ``total``.
        """
        self.check(owner)
        self._open[owner] = self._open.get(owner, 0) + 1
        try:
            yield
        finally:
            self._open[owner] -= 1
            if not self._open[owner]:
                del self._open[owner]

    @contextlib.asynccontextmanager
    async def subscription(self, channel: str) -> AsyncIterator[asyncio.Queue[str]]:
        """A queue of the messages published on ``channel`` while the block runs.

        Raises:
            redis.ConnectionError: Redis is unreachable.
        """
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        await self._join(channel, queue)
        try:
            yield queue
        finally:
            self._leave(channel, queue)  # no await: a stream cancelled, or closed at shutdown, still leaves

    async def _join(self, channel: str, queue: asyncio.Queue[str]) -> None:
        async with self._lock:
            if self._pubsub is None:
                self._pubsub = (await self._subscriber()).pubsub()
            listeners = self._queues.setdefault(channel, set())
            if not listeners:
                try:
                    await self._pubsub.subscribe(channel)
                except BaseException:
                    del self._queues[channel]
                    raise
            listeners.add(queue)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.get_running_loop().create_task(self._read())

    def _leave(self, channel: str, queue: asyncio.Queue[str]) -> None:
        listeners = self._queues.get(channel, set())
        listeners.discard(queue)
        if not listeners:
            self._queues.pop(channel, None)
            self._left.add(channel)

    async def _unsubscribe_left(self) -> None:
        """Unsubscribe the channels no stream listens to any more (under the lock a join takes)."""
        async with self._lock:
            left = {channel for channel in self._left if channel not in self._queues}
            if left:
                await self._pubsub.unsubscribe(*left)  # raises when Redis is away: tried again next round
            self._left.clear()

    async def _read(self) -> None:
        """Pass every message to the queues of its channel (redis-py reconnects and subscribes again after a
        lost connection; a message lost meanwhile delays an event only)."""
        while True:
            try:
                if self._left:
                    await self._unsubscribe_left()
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except CONNECTION_ERRORS as exc:
                log.warning("event streams: Redis unreachable: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if message is None or message.get("type") != "message":
                continue
            for queue in tuple(self._queues.get(str(message["channel"]), ())):
                if queue.full():
                    with contextlib.suppress(asyncio.QueueEmpty):
                        queue.get_nowait()
                queue.put_nowait(str(message["data"]))

    async def close(self) -> None:
        """Stop the reader and close the connection."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, *CONNECTION_ERRORS):
                await self._reader
        with contextlib.suppress(*CONNECTION_ERRORS):
            if self._pubsub is not None:
                await self._pubsub.aclose()
            if self._client is not None:
                await self._client.aclose()
