"""``taskplane dashboard -A APP --port P`` serves the page, its assets and the API it calls."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from taskplane.stack import free_port
from tests.api_server import wait_healthy


def test_taskplane_dashboard_serves_the_page_and_the_api(redis_url: str, repo_root: Path, tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "taskplane", "dashboard", "-A", "tests.apps.core_app:tp", "--port", str(port)]
    with open(tmp_path / "dashboard.log", "w") as log:
        process = subprocess.Popen(
            argv, cwd=repo_root, env={**os.environ, "TASKPLANE_REDIS_URL": redis_url}, stdout=log, stderr=log
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base, lambda: process.poll() is None)
            page = httpx.get(f"{base}/")
            assert page.status_code == 200 and "<title>taskplane</title>" in page.text
            assert httpx.get(f"{base}/dashboard-assets/app.css").headers["content-type"].startswith("text/css")
            assert httpx.get(f"{base}/api/v1/session").status_code == 401  # signed out
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(15)
    assert f"taskplane dashboard on {base}/" in (tmp_path / "dashboard.log").read_text()
