"""A real HTTP API for tests: ``taskplane api`` as a subprocess, or uvicorn in a thread for a custom app."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from taskplane.stack import free_port

QUIET = ("--no-access-log", "--log-level", "warning")


def wait_healthy(base_url: str, alive: Callable[[], bool], timeout: float = 30.0, prefix: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the API server exited during start-up")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}{prefix}/api/v1/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"API at {base_url} not healthy in {timeout}s")


@pytest.fixture
def api_url(redis_url: str, repo_root: Path, tmp_path: Path) -> Iterator[str]:
    """``taskplane api -A tests.apps.core_app:tp`` on a free port; stopped by its pid."""
    with running_api(repo_root, redis_url, tmp_path / "api.log") as base_url:
        yield base_url


@contextlib.contextmanager
def running_api(repo_root: Path, redis_url: str, log_path: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """``taskplane api -A tests.apps.core_app:tp`` on a free port with ``env`` added (settings); yields its
    base URL and stops it by its pid."""
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "taskplane", "api", "-A", "tests.apps.core_app:tp", "--port", str(port), *QUIET],
        cwd=repo_root,
        env={**os.environ, "TASKPLANE_REDIS_URL": redis_url, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, lambda: process.poll() is None)
        yield base_url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, prefix: str = "") -> Iterator[str]:
    """Serve ``app`` over real HTTP from a thread of this process (the API mounted at ``prefix``); yields its
    base URL."""
    port = free_port()
    # As `taskplane api` does: streams still open at the stop are cancelled after a grace period (a stream
    # whose client left was otherwise closed by the event loop's shutdown, mid-await, and left its socket).
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, thread.is_alive, prefix=prefix)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(10)
