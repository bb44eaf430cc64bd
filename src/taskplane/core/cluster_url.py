"""Valkey/Redis Cluster URLs, parsed once: ``redis+cluster://[user:password@]host:port[,host:port...][/0]``
(``rediss+cluster://`` with TLS). Any of the nodes is enough to find the others; naming several lets a
client start while one of them is down. :mod:`taskplane.redis.cluster_url` connects to one."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

from taskplane.core.errors import ConfigurationError

#: Cluster schemes, and whether each speaks TLS.
SCHEMES = {"redis+cluster": False, "rediss+cluster": True}


@dataclass(frozen=True)
class ClusterUrl:
    """What a cluster URL says: its seed nodes, credentials, TLS and query parameters."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    tls: bool = False
    query: tuple[tuple[str, str], ...] = ()


def parse_cluster_url(url: str) -> ClusterUrl | None:
    """The :class:`ClusterUrl` of ``url``, or None when it is not a cluster URL.

    Raises:
        ConfigurationError: a cluster URL without nodes, with a port that is not a number, or naming a
            database other than 0 (a cluster has only database 0).
    """
    scheme, _, rest = url.partition("://")
    if scheme not in SCHEMES:
        return None
    # urlsplit reads one host; the node list is split here, after the credentials.
    credentials, _, hosts_and_path = rest.rpartition("@")
    hosts, _, path_and_query = hosts_and_path.partition("/")
    split = urlsplit(
        f"{scheme}://{credentials}@h/{path_and_query}" if credentials else f"{scheme}://h/{path_and_query}"
    )
    nodes = tuple(_node(url, part) for part in hosts.split(",") if part)
    if not nodes:
        raise ConfigurationError(f"bad Redis URL: a cluster URL names at least one node as host:port ({url!r})")
    database = split.path.strip("/")
    if database not in ("", "0"):
        raise ConfigurationError(f"bad Redis URL: a cluster has only database 0, not {database!r}")
    query = tuple((key, values[-1]) for key, values in parse_qs(split.query).items())
    username = unquote(split.username) if split.username else None
    password = unquote(split.password) if split.password is not None else None
    return ClusterUrl(nodes, username, password, SCHEMES[scheme], query)


def _node(url: str, part: str) -> tuple[str, int]:
    host, _, port = part.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigurationError(f"bad Redis URL: cluster node {part!r} is not host:port")
    return host.strip("[]"), int(port)


def node_url(cluster: ClusterUrl) -> str:
    """A plain URL of the cluster's first node, with its credentials, TLS and query: what kombu and Celery
    are given where they read one server's URL (taskplane's cluster channel connects to the whole cluster)."""
    host, port = cluster.nodes[0]
    host = f"[{host}]" if ":" in host else host
    user = quote(cluster.username or "", safe="")
    credentials = f"{user}:{quote(cluster.password, safe='')}@" if cluster.password is not None else ""
    if cluster.username and cluster.password is None:
        credentials = f"{user}@"
    query = "&".join(f"{key}={value}" for key, value in cluster.query)
    return f"{'rediss' if cluster.tls else 'redis'}://{credentials}{host}:{port}/0" + (f"?{query}" if query else "")
