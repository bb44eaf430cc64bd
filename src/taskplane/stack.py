"""Child processes of a local stack (``taskplane dev``, ``taskplane demo``): started here, stopped by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO
from urllib.error import URLError
from urllib.request import urlopen

from taskplane.core.errors import TaskplaneError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ChildProcess:
    """``python -m taskplane ARGS`` in its own process group, output to a log file (or this terminal)."""

    def __init__(self, name: str, args: list[str], redis_url: str, log_path: Path | None = None) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[str] | None = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "taskplane", *args],
            env={**os.environ, "TASKPLANE_REDIS_URL": redis_url},
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self.process.pid

    def running(self) -> bool:
        """True while the child has not exited."""
        return self.process.poll() is None

    def last_words(self) -> str:
        """The last line the child logged (its error, when it died), or '' without a log file."""
        if self.log_path is None:
            return ""
        if self._log is not None:
            self._log.flush()
        try:
            lines = [line.strip() for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return ""
        return lines[-1][:300] if lines else "(no output)"

    def stop(self, timeout: float = 40.0) -> None:
        """SIGTERM the child, wait up to ``timeout``, then SIGKILL its process group."""
        stop_all([self], timeout)

    def wait_until(self, deadline: float) -> None:
        """Wait for the child until ``deadline`` (monotonic), then SIGKILL its process group; close its log."""
        try:
            self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self._log is not None:
            self._log.close()


def stop_all(children: list[ChildProcess], timeout: float = 40.0) -> None:
    """SIGTERM every child at once, wait up to ``timeout`` for all of them together, then SIGKILL the process
    groups of those still running: stopping a stack takes the longest child's time, not the sum."""
    for child in children:
        if child.running():
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        child.wait_until(deadline)


def start_api(app_spec: str, redis_url: str, port: int, log_path: Path | None = None) -> ChildProcess:
    """``taskplane api`` on 127.0.0.1:``port``, once it answers ``/api/v1/health``.

    Raises:
        TaskplaneError: it exited or did not answer within 30 s.
    """
    api = ChildProcess(
        "api",
        ["api", "-A", app_spec, "--port", str(port), "--no-access-log", "--log-level", "warning"],
        redis_url,
        log_path,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(URLError, OSError), urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1):
            return api
        if not api.running():
            break
        time.sleep(0.1)
    api.stop()
    raise TaskplaneError(f"the API did not start on port {port}" + (f" (log: {log_path})" if log_path else ""))
