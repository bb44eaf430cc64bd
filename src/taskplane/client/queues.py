"""``tp.queues``: what waits in each queue (ready, delayed, dead), highest tier first."""

from __future__ import annotations

from typing import Any

from taskplane.core.topology import Topology
from taskplane.stores.bundle import Stores


class Queues:
    """The queues of one app and their depths."""

    def __init__(self, stores: Stores, topology: Topology) -> None:
        self._stores = stores
        self._topology = topology

    def names(self) -> list[str]:
        """Declared queue names, highest tier first."""
        return self._topology.names()

    def lengths(self, names: list[str] | None = None) -> dict[str, int]:
        """Messages ready in each queue (every priority sub-list counted)."""
        return self._stores.queues.lengths(names if names is not None else self.names())

    def stats(self) -> list[dict[str, Any]]:
        """Ready, delayed and dead counts per queue, highest tier first."""
        names = self.names()
        ready = self.lengths(names)
        delayed = self._stores.delayed.counts(names)
        dead = self._stores.dead_letters.counts()
        return [
            {
                "queue": spec.name,
                "tier": spec.tier,
                "weight": spec.weight,
                "ready": ready[spec.name],
                "delayed": delayed.get(spec.name, 0),
                "dead": dead.get(spec.name, 0),
            }
            for spec in self._topology.ordered()
        ]
