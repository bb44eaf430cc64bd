"""``tp.workers``: the live workers, from their heartbeats in Redis."""

from __future__ import annotations

import warnings
from typing import Any

from taskplane.core.topology import Topology
from taskplane.stores.bundle import Stores


class Workers:
    """Live workers of one app (any host), and which queues they serve."""

    def __init__(self, stores: Stores, topology: Topology) -> None:
        self._stores = stores
        self._topology = topology

    def live(self) -> list[dict[str, Any]]:
        """Workers that sent a heartbeat within the alive window, most recent first."""
        return self._stores.workers.live()

    def per_queue(self) -> dict[str, int]:
        """How many live workers consume each declared queue (0 for a queue nobody serves)."""
        counts = dict.fromkeys(self._topology.names(), 0)
        for worker in self.live():
            for queue in worker["queues"]:
                counts[queue] = counts.get(queue, 0) + 1
        return counts

    def __call__(self) -> list[dict[str, Any]]:
        """Deprecated: ``tp.workers()`` is ``tp.workers.live()``."""
        warnings.warn("tp.workers() is deprecated; use tp.workers.live()", DeprecationWarning, stacklevel=2)
        return self.live()
