"""Named worker profiles: which queues a worker consumes and how (concurrency, prefetch, recycling)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from taskplane.core.errors import ConfigurationError
from taskplane.core.topology import DEFAULT_TIERS, Topology

#: Prefetch per tier: strict ordering for the upper tiers, throughput for bulk work.
TIER_PREFETCH = {"critical": 1, "high": 1, "normal": 1, "low": 4}


@dataclass(frozen=True)
class WorkerProfile:
    """How one kind of worker runs."""

    name: str
    queues: tuple[str, ...]
    concurrency: int
    prefetch: int = 1
    max_tasks_per_child: int | None = None

    def __post_init__(self) -> None:
        if not self.queues:
            raise ConfigurationError(f"profile {self.name!r} consumes no queues")
        if self.concurrency < 1 or self.prefetch < 1:
            raise ConfigurationError(f"profile {self.name!r}: concurrency and prefetch must be >= 1")


class Profiles:
    """Profiles declared in code, plus one default profile per tier and ``default`` (all queues)."""

    def __init__(self, topology: Topology) -> None:
        self._topology = topology
        self._declared: dict[str, WorkerProfile] = {}

    def declare(
        self,
        name: str,
        queues: list[str],
        concurrency: int | None = None,
        prefetch: int = 1,
        max_tasks_per_child: int | None = None,
    ) -> WorkerProfile:
        """Declare a named profile (queues are checked against the topology)."""
        for queue in queues:
            self._topology.get(queue)
        profile = WorkerProfile(
            name, tuple(queues), concurrency or default_concurrency(), prefetch, max_tasks_per_child
        )
        self._declared[name] = profile
        return profile

    def get(self, name: str) -> WorkerProfile:
        """The profile called ``name``.

        Raises:
            ConfigurationError: unknown (the message lists the known ones).
        """
        if name in self._declared:
            return self._declared[name]
        if name == "default":
            return WorkerProfile("default", tuple(self._topology.names()), default_concurrency())
        if name in DEFAULT_TIERS:
            return WorkerProfile(name, tuple(self._topology.in_tier(name)), default_concurrency(), TIER_PREFETCH[name])
        raise ConfigurationError(f"unknown profile {name!r}; known profiles: {', '.join(self.names())}")

    def names(self) -> list[str]:
        """Every profile name."""
        return [*self._declared, "default", *(t for t in DEFAULT_TIERS if t not in self._declared)]


def default_concurrency() -> int:
    """One worker process per CPU."""
    return max(1, os.cpu_count() or 1)
