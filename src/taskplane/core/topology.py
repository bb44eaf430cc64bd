"""Tiers, queues, dead-letter names and routing."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from taskplane.core.errors import ConfigurationError

#: The built-in tiers and their weights: a higher weight is always served first.
DEFAULT_TIERS: dict[str, int] = {"critical": 10, "high": 8, "normal": 5, "low": 2}
DEFAULT_QUEUE = "normal"
DEAD_SUFFIX = ".dead"
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


def dead_letter_name(queue: str) -> str:
    """The dead-letter queue of ``queue``: ``<queue>.dead``."""
    return f"{queue}{DEAD_SUFFIX}"


@dataclass(frozen=True)
class QueueSpec:
    """One queue: its name and the weight of its tier (higher is served first)."""

    name: str
    tier: str
    weight: int

    @property
    def dead_letter(self) -> str:
        """Name of this queue's dead-letter queue."""
        return dead_letter_name(self.name)


class Topology:
    """The app's queues. Built-in tiers are queues of their own; apps add queues with a tier."""

    def __init__(self) -> None:
        self._queues: dict[str, QueueSpec] = {
            name: QueueSpec(name, name, weight) for name, weight in DEFAULT_TIERS.items()
        }
        #: Called with a name before it is found unknown: queues declared elsewhere (a team's Celery
        #: ``task_queues``) get their chance.
        self.on_miss: Callable[[str], None] | None = None

    def add_queue(self, name: str, tier: str = DEFAULT_QUEUE) -> QueueSpec:
        """Declare a queue served at the priority of ``tier``.

        Raises:
            ConfigurationError: bad name, unknown tier, or the name is taken by another tier.
        """
        if not _QUEUE_NAME.match(name) or name.endswith(DEAD_SUFFIX):
            raise ConfigurationError(f"bad queue name {name!r}: use letters, digits, '_' and '-'")
        if tier not in DEFAULT_TIERS:
            raise ConfigurationError(f"unknown tier {tier!r}; valid tiers: {', '.join(DEFAULT_TIERS)}")
        existing = self._queues.get(name)
        if existing is not None and existing.tier != tier:
            raise ConfigurationError(f"queue {name!r} is already declared in tier {existing.tier!r}")
        spec = QueueSpec(name, tier, DEFAULT_TIERS[tier])
        self._queues[name] = spec
        return spec

    def get(self, name: str) -> QueueSpec:
        """The queue called ``name``.

        Raises:
            ConfigurationError: no such queue (the message lists the declared ones).
        """
        if name not in self._queues and self.on_miss is not None:
            self.on_miss(name)
        try:
            return self._queues[name]
        except KeyError:
            raise ConfigurationError(f"unknown queue {name!r}; declared queues: {', '.join(self.names())}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._queues

    def names(self) -> list[str]:
        """All queue names, highest tier first (stable within a tier)."""
        return [spec.name for spec in self.ordered()]

    def ordered(self, names: list[str] | None = None) -> list[QueueSpec]:
        """The given queues (default all), sorted highest tier first; the order a worker consumes them."""
        specs = [self.get(name) for name in names] if names is not None else list(self._queues.values())
        order = {spec.name: index for index, spec in enumerate(self._queues.values())}
        return sorted(specs, key=lambda spec: (-spec.weight, order[spec.name]))

    def in_tier(self, tier: str) -> list[str]:
        """Names of the queues in one tier."""
        return [spec.name for spec in self.ordered() if spec.tier == tier]
