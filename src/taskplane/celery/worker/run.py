"""The ``celery worker`` arguments for a taskplane worker: queues in tier order, profile settings."""

from __future__ import annotations

import os
import socket

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
) -> list[str]:
    """The ``celery worker`` arguments for these choices (queues sorted highest tier first).

    Raises:
        ConfigurationError: unknown queue or profile.
    """
    chosen = profiles.get(profile or "default")
    names = [spec.name for spec in topology.ordered(queues if queues else list(chosen.queues))]
    argv = [
        "worker",
        "--queues",
        ",".join(names),
        "--concurrency",
        str(concurrency or chosen.concurrency),
        "--prefetch-multiplier",
        str(chosen.prefetch if profile else settings.prefetch_multiplier),
        "--max-tasks-per-child",
        str(chosen.max_tasks_per_child or settings.max_tasks_per_child),
        *(
            ["--max-memory-per-child", str(settings.max_memory_per_child * 1024)]
            if settings.max_memory_per_child
            else ()
        ),
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
