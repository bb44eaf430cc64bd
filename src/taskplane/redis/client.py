"""Redis client construction with the timeouts and health checks every taskplane process uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlparse

import kombu.exceptions
import redis
from redis.cluster import RedisCluster
from redis.utils import str_if_bytes

from taskplane.core.cluster_url import parse_cluster_url
from taskplane.core.errors import RedisUnavailableError
from taskplane.redis.cluster_url import connect_cluster

SOCKET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 3.0
#: How long the check of a publish that got no reply waits (on a connection of its own).
RESOLVE_TIMEOUT = 3.0
HEALTH_CHECK_INTERVAL = 25

#: What a server that is there but takes no writes for now answers: full (``maxmemory`` with
#: ``noeviction``), a replica (``READONLY``), a primary lost in a failover. Nothing was done (every
#: taskplane script is refused whole, before it starts, when the server is full: ``scripts.py``).
REFUSAL_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.MasterDownError,
    # a cluster electing a primary (CLUSTERDOWN, TRYAGAIN), a slot with no node known yet, redis-py's cluster
    # client out of retries: nothing was done
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
)

#: What means Redis cannot do an operation now: redis-py, kombu and the OS when the server cannot be
#: reached, and its refusals (:data:`REFUSAL_ERRORS`). An outage: the operation is retried or handed back
#: (a delivery returns to its queue), never taken as done.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    kombu.exceptions.OperationalError,
    ConnectionError,
    *REFUSAL_ERRORS,
)


#: What a Redis/Valkey Cluster node answers a client that does not speak cluster (redis-py 8 raises its own
#: classes for them, without the prefix in the message; earlier versions a plain ResponseError with it).
CLUSTER_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ClusterCrossSlotError,
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
)
CLUSTER_REPLIES = ("CROSSSLOT", "MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN")
#: What a cluster client raises when no node of the cluster answers (redis-py's own class for it).
CLUSTER_UNREACHABLE: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, redis.exceptions.RedisClusterException)


def is_cluster_error(exc: BaseException) -> bool:
    """True if ``exc`` is a cluster node's answer to a client that does not speak cluster."""
    return isinstance(exc, CLUSTER_ERRORS) or str(exc).startswith(CLUSTER_REPLIES)


#: Why a cluster node is not reached by a plain URL: a client must follow the cluster's slots.
CLUSTER_NODE = (
    "is a cluster node: give the cluster's URL, redis+cluster://host:port[,host:port...] (rediss+cluster:// with TLS)"
)


def unsuitable(properties: Mapping[str, object], cluster: bool = False) -> str | None:
    """Why a server that answers cannot hold taskplane's data, from its ``HELLO`` properties (``mode``,
    ``role``); None when it can. ``cluster``: the URL says cluster (a node of one is then expected)."""
    if properties.get("mode") == "sentinel":
        return "is a Sentinel, not a data server: give the primary's address (Sentinel URLs are not supported yet)"
    if properties.get("mode") == "cluster" and not cluster:
        return CLUSTER_NODE
    if cluster and properties.get("mode") != "cluster":
        return "is not in cluster mode: give its redis:// URL"
    if properties.get("role") in ("replica", "slave"):
        return "is a replica, which refuses writes: give the primary's address"
    return None


def check_server(client: Any, url: str) -> None:
    """Check with one ``HELLO`` (a fast command every ACL user may run; a server older than Redis 6 gets a
    ``PING``) that the server at ``url`` answers and can hold taskplane's data: a primary, not a Sentinel, in
    cluster mode if and only if ``url`` is a cluster URL (then every primary of the cluster is checked).

    Raises:
        RedisUnavailableError: it does not answer, or cannot be used (the API answers 503, as for an outage).
    """
    if isinstance(client, RedisCluster):
        cluster: Any = client  # redis-py's cluster client is partly untyped
        try:
            primaries = [cluster.get_redis_connection(node) for node in cluster.get_primaries()]
        except CLUSTER_UNREACHABLE as exc:
            raise unavailable(url, exc) from None
        for primary in primaries:
            _check_node(primary, url, cluster=True)
        return
    _check_node(client, url)


def _check_node(client: Any, url: str, cluster: bool = False) -> None:
    any_client: Any = client  # redis-py's execute_command is not typed
    try:
        try:
            reply = any_client.execute_command("HELLO")
        except redis.ResponseError:  # no HELLO before Redis 6
            client.ping()
            return
    except CONNECTION_ERRORS as exc:
        raise unavailable(url, exc) from None
    if isinstance(reply, list):  # RESP2: a flat list of names and values
        reply = dict(zip(reply[::2], reply[1::2], strict=False))
    properties = {str_if_bytes(key): str_if_bytes(value) for key, value in dict(reply).items()}
    problem = unsuitable(properties, cluster)
    if problem is not None:
        raise RedisUnavailableError(f"Redis at {safe_url(url)} {problem}")


def cluster_refused(url: str) -> RedisUnavailableError:
    """The one-line error for a server in cluster mode."""
    return RedisUnavailableError(f"Redis at {safe_url(url)} {CLUSTER_NODE}")


def refusal(url: str, exc: redis.ResponseError) -> Exception:
    """What to raise for a command the server refused: the one-line cluster error when a cluster node
    answered it (:func:`is_cluster_error`), else ``exc`` itself."""
    return cluster_refused(url) if is_cluster_error(exc) else exc


def with_tls_verification(url: str) -> str:
    """``url``, and for ``rediss://`` without ``ssl_cert_reqs`` the parameter ``ssl_cert_reqs=required``.

    Celery refuses a rediss:// URL that does not say how to check the server's certificate; taskplane
    chooses the safe answer (verify it) instead of failing at the first task.
    """
    parsed = urlparse(url)
    if parsed.scheme != "rediss" or "ssl_cert_reqs" in parse_qs(parsed.query):
        return url
    query = f"{parsed.query}&ssl_cert_reqs=required" if parsed.query else "ssl_cert_reqs=required"
    return parsed._replace(query=query).geturl()


def connect(url: str, timeout: float = SOCKET_TIMEOUT) -> Any:
    """A client for ``url`` with bounded socket timeouts (``timeout`` for a reply), keepalive and health
    checks: a ``redis.Redis`` (no I/O yet), or a ``redis.cluster.RedisCluster`` for a cluster URL
    (:mod:`taskplane.redis.cluster_url`), which reads the cluster's slots as it is made.

    Raises:
        RedisUnavailableError: a cluster URL whose nodes do not answer, or are not in cluster mode.
        ConfigurationError: a bad cluster URL, or redis-py too old for a cluster.
    """
    cluster = parse_cluster_url(url)
    if cluster is not None:
        try:
            return connect_cluster(
                cluster,
                socket_timeout=timeout,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_keepalive=True,
                health_check_interval=HEALTH_CHECK_INTERVAL,
                decode_responses=True,
            )
        except CLUSTER_UNREACHABLE as exc:  # redis-py's cluster client reads the slots when it is made
            if "not enabled" in str(exc):  # "Cluster mode is not enabled on this node"
                raise RedisUnavailableError(
                    f"Redis at {safe_url(url)} is not in cluster mode: give its redis:// URL"
                ) from None
            raise unavailable(url, exc) from None
    return redis.Redis.from_url(
        with_tls_verification(url),
        socket_timeout=timeout,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_INTERVAL,
        decode_responses=True,
    )


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs."""
    parsed = urlparse(url)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return url


def unknown_outcome(url: str, task_id: str, exc: BaseException) -> RedisUnavailableError:
    """A one-line error for a publish the server did not answer in time: it may still be applied (once)."""
    return RedisUnavailableError(
        f"{_no_answer(url, exc)}: task {task_id} may still be queued (once); check its status before "
        "enqueueing it again"
    )


def unknown_chunk_outcome(url: str, task_ids: list[str], exc: BaseException) -> RedisUnavailableError:
    """A one-line error for a batch enqueue's chunk the server did not answer in time, nor its check."""
    span = f"{task_ids[0]} to {task_ids[-1]}" if task_ids else "none"
    return RedisUnavailableError(
        f"{_no_answer(url, exc)}: the items before were queued, those after were not sent; {len(task_ids)} tasks "
        f"({span}) may still be queued (once each); check their status before enqueueing them again"
    )


def _no_answer(url: str, exc: BaseException) -> str:
    return (
        f"Redis at {safe_url(url)} did not answer within {SOCKET_TIMEOUT:g} s, nor its check within "
        f"{RESOLVE_TIMEOUT:g} s ({exc})"
    )


#: Why a cluster refused a command whose slot is moving between nodes (a resharding): the keys of the slot are
#: split over two nodes until the last one has moved, and a command needing keys on both is answered TRYAGAIN
#: (ASK while its keys are elsewhere); redis-py's cluster client follows for a while, then gives up.
SLOT_MOVING = "a slot it needs is moving between cluster nodes (resharding); nothing was done, try again"


def unavailable(url: str, exc: BaseException) -> RedisUnavailableError:
    """A one-line error naming the server that could not be reached (or refused the writes)."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, redis.exceptions.TryAgainError) or (
        type(exc) is redis.exceptions.ClusterError and reason == "TTL exhausted."  # followed ASK/TRYAGAIN enough
    ):
        reason = f"{SLOT_MOVING} ({reason.rstrip('.')})"
    state = "refuses writes" if isinstance(exc, REFUSAL_ERRORS) else "is unreachable"
    return RedisUnavailableError(f"Redis at {safe_url(url)} {state}: {reason}")
