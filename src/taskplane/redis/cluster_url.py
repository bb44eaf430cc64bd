"""A cluster client for a parsed cluster URL (:mod:`taskplane.core.cluster_url`)."""

from __future__ import annotations

from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

from taskplane.core.cluster_url import ClusterUrl
from taskplane.core.errors import ConfigurationError

#: The first redis-py whose cluster client runs transactions (MULTI/EXEC, WATCH), which taskplane's
#: single-slot steps use; earlier ones refuse them ("transaction is deprecated in cluster mode").
CLUSTER_REDIS_PY = (6, 1)


def connect_cluster(cluster: ClusterUrl, **options: Any) -> RedisCluster:
    """A cluster client for ``cluster`` (it reads the cluster's slots from the first node that answers);
    ``options`` go to every node's connection (timeouts, keepalive, ``decode_responses``). A TLS URL verifies
    the server's certificate unless its query says otherwise (``ssl_cert_reqs=none``).

    Raises:
        ConfigurationError: the installed redis-py is older than 6.1 (:data:`CLUSTER_REDIS_PY`).
    """
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster.nodes],  # type: ignore[no-untyped-call]
        **node_options(cluster, options),
    )


def connect_cluster_async(cluster: ClusterUrl, **options: Any) -> Any:
    """:func:`connect_cluster` for asyncio (``redis.asyncio.cluster.RedisCluster``; it reads the slots when
    first used).

    Raises:
        ConfigurationError: the installed redis-py is older than 6.1 (:data:`CLUSTER_REDIS_PY`).
    """
    from redis.asyncio.cluster import ClusterNode as AsyncNode
    from redis.asyncio.cluster import RedisCluster as AsyncCluster

    nodes = [AsyncNode(host, port) for host, port in cluster.nodes]
    return AsyncCluster(startup_nodes=nodes, **node_options(cluster, options))


def node_options(cluster: ClusterUrl, options: dict[str, Any]) -> dict[str, Any]:
    """What every connection to a node of ``cluster`` is made with: ``options``, its credentials and TLS.

    Raises:
        ConfigurationError: the installed redis-py is older than 6.1 (:data:`CLUSTER_REDIS_PY`).
    """
    if tuple(redis.VERSION[:2]) < CLUSTER_REDIS_PY:
        raise ConfigurationError(
            f"a cluster URL needs redis-py 6.1 or later (its cluster client's transactions); "
            f"{redis.__version__} is installed: pip install 'redis>=6.1'"
        )
    settings = {**options, "username": cluster.username, "password": cluster.password}
    if cluster.tls:
        settings["ssl"] = True
        settings.setdefault("ssl_cert_reqs", dict(cluster.query).get("ssl_cert_reqs", "required"))
        if "ssl_ca_certs" in dict(cluster.query):
            settings["ssl_ca_certs"] = dict(cluster.query)["ssl_ca_certs"]
    return settings
