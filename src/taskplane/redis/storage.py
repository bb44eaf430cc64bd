"""One bundle of what every store needs: the client, the key names and the scripts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from taskplane.redis.client import connect
from taskplane.redis.keys import Keys
from taskplane.redis.scripts import Batch, Scripts


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

    def batch(self) -> Batch:
        """An empty :class:`Batch` on this storage's client."""
        return Batch(self.client, self.scripts)
