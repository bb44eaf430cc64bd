"""Where a cluster channel's lanes (:mod:`taskplane.celery.lane`) find their nodes: off the worker's main loop.

Opening a queue's lane looks up the node serving the queue's slot (after the lane was dropped, the cluster's
slot map is read again first), checks that it answers, and connects to it. Any of these can meet a frozen
node, so they run in a thread of their own (:class:`~taskplane.celery.aside.Aside`), and the lookup and the
check go through a cluster client whose timeouts are short (:data:`LOOKUP_TIMEOUT`): a frozen node that still
holds the slot, or that redis-py asks for the slot map first, costs a second, not the socket timeout. The main
loop takes the connection when it is there. A queue whose node cannot be found waits a pause doubling from
0.25 s to 2 s before the next try; the other queues go on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import AskError, ClusterDownError, ClusterError, MovedError, RedisClusterException, TryAgainError

from taskplane.celery.aside import Aside
from taskplane.celery.transport import Transport
from taskplane.compat import pool_connection
from taskplane.core.backoff import Backoff

#: Seconds a lane whose node went away first waits before it looks the slot up again, and at most.
LANE_PAUSE = (0.25, 2.0)
#: Seconds a node has to answer a lookup of the slot map, or the check before a lane connects to it.
LOOKUP_TIMEOUT = 1.0
#: Seconds the main loop waits for a lookup it starts: for a queue's first lane, long enough for the lookup
#: client to read the slot map (a consumer that drains a reply queue once, with a timeout, must find its lane
#: open for the poll that follows: kombu's poll with nothing to watch sleeps the whole timeout); after a lane
#: was lost, short (a lane usually opens within it).
FIRST_LOOKUP_WAIT, LOOKUP_WAIT = 3.0, 0.2
#: What a cluster answers when a slot's node changed or is being elected: the lane looks it up again.
MOVED_ERRORS = (MovedError, AskError, ClusterDownError, TryAgainError, ClusterError, RedisClusterException)
#: What a lane's command can meet that closes the lane (it opens again on the slot's node then).
LANE_ERRORS: tuple[type[BaseException], ...] = (*Transport.connection_errors, *MOVED_ERRORS)


class LaneOpener:
    """Finds, for each queue of a cluster channel, a connection to the node serving its slot (see the module).

    Args:
        cluster: The channel's cluster clients (called when needed: they are made on first use): with
            ``lookup=True`` the one with short timeouts, else the one the lanes' connections come from.
        key_of: The key whose slot is a queue's (its list).
        aside: Where the lookups run.
    """

    def __init__(self, cluster: Callable[..., Any], key_of: Callable[[str], str], aside: Aside) -> None:
        self._cluster = cluster
        self._key_of = key_of
        self._aside = aside
        self._pauses: dict[str, Backoff] = {}
        #: Written by the lookups' threads, taken by the main loop: (the node's client, a connection).
        self._found: dict[str, tuple[Any, Any]] = {}
        #: The queues whose lane lost its node: the slot map is read again before their next lookup.
        self._stale: set[str] = set()
        #: The queues that had a lane.
        self._opened: set[str] = set()
        #: A client per node the lanes connected to (by name), with the channel's timeouts.
        self._clients: dict[str, Any] = {}
        self._closed = False

    def take(self, queue: str) -> tuple[Any, Any] | None:
        """The node client and connected connection found for ``queue``'s lane, or None: then a lookup is under
        way, or the queue's pause lasts. A lookup started here is waited for a while (:data:`LOOKUP_WAIT`)."""
        if queue not in self._found and not self._pause(queue).waiting:
            wait = LOOKUP_WAIT if queue in self._opened else FIRST_LOOKUP_WAIT
            self._aside.run(f"lane-open:{queue}", functools.partial(self._find, queue), wait)
        found = self._found.pop(queue, None)
        if found is None:
            return None
        self._opened.add(queue)
        if self._pause(queue).reset():
            kombu_redis.logger.warning("the fetch of queue %r has a node again: %s", queue, _address(found[1]))
        return found

    def dropped(self, queue: str, exc: BaseException) -> None:
        """``queue``'s lane lost its node (``exc``): the slot map is read again before its next lookup."""
        moving = isinstance(exc, (AskError, TryAgainError)) and not isinstance(exc, MovedError)
        self._retry_later(queue, "waits: its slot is moving between nodes" if moving else "lost its node", exc)

    def close(self) -> None:
        """Disconnect what was found and not taken; lookups still under way disconnect theirs."""
        self._closed = True
        for _client, connection in self._found.values():
            connection.disconnect()
        self._found.clear()
        for client in self._clients.values():
            client.close()

    def _find(self, queue: str) -> None:
        """(In a thread.) Connect to the node serving ``queue``'s slot."""
        try:
            lookup = self._cluster(lookup=True)
            if queue in self._stale:
                lookup.nodes_manager.initialize()
                self._stale.discard(queue)
            found = lookup.get_node_from_key(self._key_of(queue))
            lookup.get_redis_connection(found).ping()
            client = self._clients.get(found.name)
            if client is None:  # a client of that node with the channel's timeouts, not the lookup's
                nodes = self._cluster().nodes_manager
                client = nodes.create_redis_node(found.host, found.port, **nodes.connection_kwargs)
                self._clients[found.name] = client
            connection = pool_connection(client.connection_pool)
            connection.connect()
        except LANE_ERRORS as exc:
            self._retry_later(queue, "finds no node", exc)
            return
        if self._closed:
            connection.disconnect()
            return
        self._found[queue] = (client, connection)

    def _retry_later(self, queue: str, what: str, exc: BaseException) -> None:
        """``queue``'s lane is looked up again after its pause, the slot map read first; the log says ``what``."""
        self._stale.add(queue)
        kombu_redis.logger.warning(
            "the fetch of queue %r %s (%s): again in %.2f s", queue, what, exc, self._pause(queue).step()
        )

    def _pause(self, queue: str) -> Backoff:
        return self._pauses.setdefault(queue, Backoff(*LANE_PAUSE))


def _address(connection: Any) -> str:
    return f"{getattr(connection, 'host', '?')}:{getattr(connection, 'port', '?')}"
