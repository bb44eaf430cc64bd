"""What every ``make chaos`` fault runs on: a private embedded server, ``taskplane worker`` processes started
and stopped by pid, and the counts of an outcome (``benchmarks/chaos.py`` lists the faults)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from benchmarks.cluster import LocalCluster
from taskplane import EmbeddedServer
from taskplane.redis.client import connect

ROOT = Path(__file__).resolve().parent.parent
APP = "benchmarks.chaos_app:tp"


@dataclass
class Outcome:
    fault: str
    enqueued: int
    completed: int
    dead: int
    lost: int
    duplicates: int
    recovery_s: float
    workers_down: int
    note: str = ""


#: Stacks not stopped yet: a fault that raises leaves its stack here, and ``make chaos`` stops it (by pid).
RUNNING: list[Stack] = []


class Stack:
    """A private server and worker processes for one fault run."""

    def __init__(self, directory: Path, env: dict[str, str] | None = None, cluster: bool = False) -> None:
        self.directory = directory
        self.cluster: LocalCluster | None = None
        if cluster:  # 3 primaries with a replica each, failing over 1 s after a primary stops answering
            self.cluster = LocalCluster(directory / "cluster", primaries=3, replicas=1, node_timeout_ms=1000)
            self.cluster.start()
            first, second = self.cluster.primary_ports()[:2]
            self.url = f"redis+cluster://:{self.cluster.password}@127.0.0.1:{first},127.0.0.1:{second}"
        else:
            self.server = EmbeddedServer(directory / "data")
            self.url = self.server.start().url
        self.env = {**os.environ, "TASKPLANE_REDIS_URL": self.url, "TASKPLANE_LEASE_TIMEOUT": "6", **(env or {})}
        self.client: Any = connect(self.url)
        self.workers: list[subprocess.Popen[bytes]] = []
        RUNNING.append(self)

    def worker(self, concurrency: int = 2, redis_url: str | None = None) -> subprocess.Popen[bytes]:
        log = open(self.directory / f"worker-{len(self.workers)}.log", "w")  # noqa: SIM115 - lives with the worker
        process = subprocess.Popen(
            [sys.executable, "-m", "taskplane", "worker", "-A", APP, "-c", str(concurrency), "-l", "WARNING"],
            cwd=ROOT,
            env={**self.env, "TASKPLANE_REDIS_URL": redis_url or self.url},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(process)
        return process

    def enqueue(self, count: int, seconds: float = 0.0) -> int:
        code = (
            f"import sys; from benchmarks.chaos_app import work\nfor n in range({count}): work.enqueue(n, {seconds})\n"
        )
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=self.env, check=True, timeout=600)
        return count

    def finished(self) -> tuple[int, int]:
        runs = self.client.hvals("{chaos}:runs")
        return self.client.scard("{chaos}:done"), sum(int(value) - 1 for value in runs)

    def dead(self) -> int:
        return sum(int(self.client.zcard(key)) for key in self.client.scan_iter(match="{taskplane:*}:dead"))

    def wait(self, enqueued: int, timeout: float) -> float:
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            try:
                if self.finished()[0] + self.dead() >= enqueued:
                    break
            except redis.RedisError:
                pass
            time.sleep(0.2)
        return time.monotonic() - began

    def stop(self) -> int:
        """Stop every worker by its pid; returns how many had already exited (died)."""
        down = sum(1 for process in self.workers if process.poll() is not None)
        for process in self.workers:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if self.cluster is not None:
            self.cluster.stop()
        else:
            self.server.stop()
        if self in RUNNING:
            RUNNING.remove(self)
        return down

    def outcome(self, fault: str, enqueued: int, recovery: float, note: str = "") -> Outcome:
        completed, duplicates = self.finished()
        dead = self.dead()
        down = self.stop()
        return Outcome(fault, enqueued, completed, dead, enqueued - completed - dead, duplicates, recovery, down, note)
