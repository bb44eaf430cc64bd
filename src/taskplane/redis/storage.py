"""One bundle of what every store needs: the client, the key names and the scripts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
from redis.cluster import RedisCluster

from taskplane.redis.batch import Batch
from taskplane.redis.client import connect
from taskplane.redis.keys import Keys
from taskplane.redis.scripts import Scripts


@dataclass
class Storage:
    """A Redis client with taskplane's key names and Lua scripts bound to it."""

    client: Any  # redis.Redis with decode_responses=True
    keys: Keys
    scripts: Scripts = field(init=False)

    def __post_init__(self) -> None:
        self.scripts = Scripts(self.client)

    @classmethod
    def from_url(cls, url: str, prefix: str) -> Storage:
        """Storage over a fresh client for ``url`` (no I/O until first use)."""
        return cls(connect(url), Keys(prefix))

    def binary(self) -> Any:
        """A new client to the same server that returns bytes as they are (for items that may not be UTF-8
        text); the caller closes it."""
        if isinstance(self.client, RedisCluster):
            kwargs = {**self.client.get_connection_kwargs(), "decode_responses": False}  # type: ignore[no-untyped-call]
            for name in ("host", "port"):
                kwargs.pop(name, None)
            nodes = list(self.client.nodes_manager.startup_nodes.values())
            return RedisCluster(startup_nodes=nodes, **kwargs)
        pool = self.client.connection_pool
        kwargs = {**pool.connection_kwargs, "decode_responses": False}
        return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))

    def batch(self) -> Batch:
        """An empty :class:`Batch` on this storage's client."""
        return Batch(self.client, self.scripts)
