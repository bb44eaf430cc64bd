"""Start a Celery worker for a Taskplane app, queues in tier order."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from taskplane.app import Taskplane


def worker_argv(
    tp: Taskplane,
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
    chosen = tp.profiles.get(profile or "default")
    names = [spec.name for spec in tp.topology.ordered(queues if queues else list(chosen.queues))]
    argv = [
        "worker",
        "--queues",
        ",".join(names),
        "--concurrency",
        str(concurrency or chosen.concurrency),
        "--prefetch-multiplier",
        str(chosen.prefetch if profile else tp.settings.prefetch_multiplier),
        "--max-tasks-per-child",
        str(chosen.max_tasks_per_child or tp.settings.max_tasks_per_child),
        "--hostname",
        hostname or f"{chosen.name}-{os.getpid()}@{socket.gethostname()}",
        "--loglevel",
        loglevel,
        "--pool",
        pool,
        "--task-events",
        "--without-mingle",
        "--without-gossip",
    ]
    return argv


def run_worker(tp: Taskplane, argv: list[str]) -> None:
    """Run the worker in this process until it shuts down."""
    tp.ping()
    tp.celery.worker_main(argv)
