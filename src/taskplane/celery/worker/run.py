"""The ``celery worker`` arguments for a taskplane worker: queues in tier order, profile settings."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from taskplane.core.profiles import Profiles
from taskplane.core.settings import Settings
from taskplane.core.topology import Topology


def worker_argv(
    profiles: Profiles,
    topology: Topology,
    settings: Settings,
    queues: list[str] | None = None,
    concurrency: int | None = None,
    profile: str | None = None,
    hostname: str | None = None,
    loglevel: str = "INFO",
    pool: str = "prefork",
    team: Mapping[str, Any] | None = None,
) -> list[str]:
    """The ``celery worker`` arguments for these choices (queues sorted highest tier first). What is not
    given here comes from the named profile, else from the team's Celery settings (``worker_concurrency``,
    ``worker_prefetch_multiplier``, ``worker_max_tasks_per_child``, ``worker_max_memory_per_child``), else
    from taskplane's settings.

    Raises:
        ConfigurationError: unknown queue or profile.
    """
    team = team or {}
    chosen = profiles.get(profile or "default")
    names = [spec.name for spec in topology.ordered(queues if queues else list(chosen.queues))]
    named = profile is not None
    processes = concurrency or (chosen.concurrency if named else team.get("worker_concurrency") or chosen.concurrency)
    prefetch = chosen.prefetch if named else team.get("worker_prefetch_multiplier") or settings.prefetch_multiplier
    recycle = chosen.max_tasks_per_child or team.get("worker_max_tasks_per_child") or settings.max_tasks_per_child
    memory_kib = team.get("worker_max_memory_per_child") or settings.max_memory_per_child * 1024
    argv = [
        "worker",
        "--queues",
        ",".join(names),
        "--concurrency",
        str(processes),
        "--prefetch-multiplier",
        str(prefetch),
        "--max-tasks-per-child",
        str(recycle),
        *(["--max-memory-per-child", str(memory_kib)] if memory_kib else ()),
        "--hostname",
        hostname or f"{chosen.name}-{os.getpid()}@{socket.gethostname()}",
        "--loglevel",
        loglevel,
        "--pool",
        pool,
        "--without-mingle",
        "--without-gossip",
    ]
    return argv
