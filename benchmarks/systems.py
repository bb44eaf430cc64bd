"""The systems ``make bench`` compares: how each starts its workers and how to tell that they drained."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class System:
    """One job system under test."""

    name: str
    worker_argv: Callable[[int], list[str]]
    #: Redis client -> how many tasks are still to run (queued or in flight).
    remaining: Callable[[Any], int]
    batch: bool = False


def _taskplane_remaining(client: Any) -> int:
    from taskplane.redis.keys import Keys

    keys = Keys("taskplane:")
    return int(sum(client.llen(key) for key in keys.queue_lists("normal")) + client.hlen(keys.unacked("normal")))


def _celery_remaining(client: Any) -> int:
    return int(client.llen("celery") + client.hlen("unacked"))


def _dramatiq_remaining(client: Any) -> int:
    return int(client.hlen("dramatiq:default.msgs"))


SYSTEMS = {
    "taskplane": System(
        "taskplane",
        lambda c: [
            str(BIN / "taskplane"),
            "worker",
            "-A",
            "benchmarks.bench_app:tp",
            "-c",
            str(c),
            "--loglevel",
            "WARNING",
        ],
        _taskplane_remaining,
        batch=True,
    ),
    "celery": System(
        "celery",
        lambda c: [
            str(BIN / "celery"),
            "-A",
            "benchmarks.plain_celery_app",
            "worker",
            "-c",
            str(c),
            "-P",
            "prefork",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        _celery_remaining,
    ),
    "dramatiq": System(
        "dramatiq",
        lambda c: [str(BIN / "dramatiq"), "benchmarks.dramatiq_app", "-p", str(c), "-t", "8"],
        _dramatiq_remaining,
    ),
}


class Worker:
    """A worker of one system, started in its own process group and stopped with it."""

    def __init__(self, system: System, concurrency: int, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            system.worker_argv(concurrency),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def rss_bytes(self) -> int:
        """Resident memory of the worker and every process under it."""
        parent = psutil.Process(self.process.pid)
        total = 0
        for process in [parent, *parent.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def stop(self) -> None:
        """SIGTERM the group; SIGKILL it after 20 s."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def enqueue(system: str, mode: str, count: int, env: dict[str, str]) -> float:
    """Seconds one producer process took to enqueue ``count`` tasks (plus a warm-up, not timed)."""
    import json

    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.load", system, mode, str(count)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def drain(system: System, concurrency: int, client: Any, env: dict[str, str], timeout: float = 600) -> float:
    """Start ``concurrency`` worker processes on a filled queue; seconds until every task ran."""
    started = time.perf_counter()
    worker = Worker(system, concurrency, env)
    try:
        while system.remaining(client) > 0:
            if worker.process.poll() is not None:
                raise SystemExit(f"the {system.name} worker exited with {worker.process.returncode}")
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"the {system.name} worker did not drain in {timeout:.0f} s")
            time.sleep(0.02)
        return time.perf_counter() - started
    finally:
        worker.stop()
