"""Real worker processes for tests: started by the fixture, stopped by their pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


class WorkerProcess:
    """One ``taskplane worker`` subprocess in its own process group (so its pool children go with it)."""

    def __init__(
        self,
        repo_root: Path,
        queues: str | None,
        concurrency: int,
        env: dict[str, str],
        log_dir: Path,
        app: str = "tests.apps.core_app:tp",
    ) -> None:
        self.app = app
        self.hostname = f"w{uuid.uuid4().hex[:8]}@test"
        self.log_path = log_dir / f"{self.hostname}.log"
        argv = [
            sys.executable,
            "-m",
            "taskplane",
            "worker",
            "-A",
            app,
            "--concurrency",
            str(concurrency),
            "--hostname",
            self.hostname,
            "--loglevel",
            "INFO",
        ]
        if queues:
            argv += ["--queues", queues]
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop() or discard()
        self._ended = False
        self.process = subprocess.Popen(
            argv,
            cwd=repo_root,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait for the worker's first heartbeat."""
        from taskplane.loader import load_app  # imported late: the app reads TASKPLANE_REDIS_URL once

        tp = load_app(self.app)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(w["hostname"] == self.hostname for w in tp.workers.live()):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"worker not ready in {timeout}s: {self.log_path.read_text()[-2000:]}")

    def terminate(self) -> None:
        """SIGTERM the worker's main process (a graceful, bounded shutdown)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes (its process group), like a machine dying."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 40.0) -> None:
        """Terminate and wait; kill the group if it does not exit in time."""
        self.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(ProcessLookupError):  # any orphaned pool child of this worker
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()
        self._ended = True

    def discard(self) -> None:
        """End the worker at once, whatever state it is in (the fixture's clean-up: a graceful stop takes
        2-4 s and is what the shutdown tests are about, not every test)."""
        if self._ended:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._log.close()
        self._ended = True


#: The ``start_worker`` fixture: ``start_worker(queues=..., concurrency=..., env=..., ready=..., app=...)``.
StartWorker = Callable[..., WorkerProcess]
#: The ``worker_in_process`` fixture: ``worker_in_process(tp, queues=None)``.
InProcessWorker = Callable[..., Any]


@pytest.fixture
def start_worker(redis_url: str, repo_root: Path, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory: start_worker(queues="normal", concurrency=1, env={...}) -> a ready WorkerProcess."""
    started: list[WorkerProcess] = []

    def start(
        queues: str | None = None,
        concurrency: int = 1,
        env: dict[str, str] | None = None,
        ready: bool = True,
        app: str = "tests.apps.core_app:tp",
    ) -> WorkerProcess:
        worker = WorkerProcess(
            repo_root, queues, concurrency, {"TASKPLANE_REDIS_URL": redis_url, **(env or {})}, tmp_path, app
        )
        started.append(worker)
        if ready:
            worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.discard()


@pytest.fixture
def worker_in_process(redis_url: str) -> Iterator[Callable[..., Any]]:
    """Factory: ``worker_in_process(tp, queues="a,b")`` runs Celery's own test worker (solo pool) for an app
    in a thread of this process, with taskplane's bootstep, consumer, transport and task class; stopped at
    the end of the test. For tests where the process boundary is not the point: it starts and stops in
    well under a second."""
    from celery.contrib.testing.worker import start_worker

    with contextlib.ExitStack() as stack:

        def start(tp: Any, queues: str | None = None) -> Any:
            # The queues chosen stay chosen on the app object: choose every time (all of them by default).
            tp.celery.amqp.queues.select(queues.split(",") if queues else tp.topology.names())
            hostname = f"w{uuid.uuid4().hex[:8]}@test"
            worker = stack.enter_context(
                start_worker(tp.celery, pool="solo", perform_ping_check=False, hostname=hostname, loglevel="WARNING")
            )
            return worker

        yield start


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
