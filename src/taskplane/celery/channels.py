"""Channels for taskplane's own publishing (``enqueue``, ``.delay()``, batches), reused across calls.

kombu's producer pool does the same job with a producer object, a resource queue and a ``revive`` per
acquire: about a tenth of a plain enqueue's time. Publishing directly needs only a channel of
taskplane's transport, so this pool keeps idle connections on a list under a lock. A connection that
failed is dropped; the others go back for the next call. After a fork the child starts with an empty
list (the parent's sockets are not shared).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from taskplane.redis.client import CONNECTION_ERRORS

#: Seconds between tries of a new publishing connection.
RETRY_STEP = 0.2


class ChannelPool:
    """Idle broker connections for publishing, made by ``connect`` when none is free. A new connection is
    retried for ``patience()`` seconds at most (0: tried once, for a caller that falls back at once): a
    producer learns within about a second that Redis is unreachable, a worker waits out a restart."""

    def __init__(self, connect: Callable[[], Any], patience: Callable[[], float]) -> None:
        self._connect = connect
        self._patience = patience
        self._free: list[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def channel(self) -> AbstractContextManager[Any]:
        """A channel of a free connection (or a new one) for a ``with`` block; the connection is kept
        unless the block failed to reach the broker. (A class, not a generator: it runs on every enqueue.)

        Raises:
            kombu.exceptions.OperationalError: a new connection could not be made within the patience.
        """
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's connections are not ours to use
                self._free, self._pid = [], os.getpid()
            connection = self._free.pop() if self._free else None
        if connection is None:
            connection = self._connect()
            patience = self._patience()
            try:
                # Bounded here: kombu's own default (broker_connection_timeout, per try) blocks an enqueue 12 s.
                connection.ensure_connection(
                    max_retries=None if patience else 0,
                    interval_start=0,
                    interval_step=RETRY_STEP,
                    interval_max=RETRY_STEP,
                    timeout=patience or None,
                )
            except BaseException:
                connection.collect()
                raise
            connection.default_channel.exclusive = True  # only the holder of the connection uses it
        return _Held(self, connection)

    def _release(self, connection: Any) -> None:
        with self._lock:
            if self._pid == os.getpid():
                self._free.append(connection)


class _Held(AbstractContextManager[Any]):
    """One connection of a :class:`ChannelPool` held for a ``with`` block: its channel inside; back to the
    pool after it, or dropped when the block failed to reach the broker."""

    __slots__ = ("_connection", "_pool")

    def __init__(self, pool: ChannelPool, connection: Any) -> None:
        self._pool, self._connection = pool, connection

    def __enter__(self) -> Any:
        return self._connection.default_channel

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is not None and issubclass(kind, CONNECTION_ERRORS):
            self._connection.collect()
        else:
            self._pool._release(self._connection)
