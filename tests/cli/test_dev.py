"""``taskplane dev``: a whole local stack from one command, stopped by Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from taskplane.redis.embedded import EmbeddedServer
from taskplane.stack import free_port
from tests.cli_output import error_lines


def start_dev(tmp_path: Path, repo_root: Path, port: int) -> subprocess.Popen[str]:
    """``taskplane dev`` on its own embedded server under ``tmp_path`` (no Redis URL configured)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TASKPLANE_REDIS_URL", "REDIS_URL")}
    env["TASKPLANE_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.Popen(
        [
            sys.executable,
            "-X",
            "faulthandler",
            "-m",
            "taskplane",
            "dev",
            "-A",
            "tests.apps.core_app:tp",
            "--port",
            str(port),
            "-c",
            "1",
        ],
        cwd=repo_root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # Started with SIGINT ignored, as a test runner's worker (or a supervisor) may start it: Ctrl-C must
        # still stop dev (it did not, and hung busy test runs)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )


def stopped(dev: subprocess.Popen[str]) -> str:
    """What dev printed once it exited (its children stop together, 40 s at most); if it did not exit in
    120 s, its threads' stacks (faulthandler, on SIGABRT) are in the failure."""
    try:
        return dev.communicate(timeout=120)[0]
    except subprocess.TimeoutExpired:
        dev.send_signal(signal.SIGABRT)
        raise AssertionError(f"dev did not stop within 120 s of Ctrl-C:\n{dev.communicate(timeout=30)[0]}") from None


def test_dev_runs_server_worker_and_api_prints_a_key_and_stops_on_ctrl_c(tmp_path: Path, repo_root: Path) -> None:
    # Given `taskplane dev` on its own embedded server (no Redis URL configured)
    port = free_port()
    dev = start_dev(tmp_path, repo_root, port)
    try:
        lines: list[str] = []
        assert dev.stdout is not None
        while not any("try:" in line for line in lines):
            line = dev.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        printed = re.search(r"tpk_[A-Za-z0-9_-]+", "".join(lines))
        assert printed is not None, "".join(lines)
        token = printed.group(0)
        # When a task is enqueued through the printed API with the printed key
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers=headers) as api:
            task_id = api.post("/tasks", json={"task": "t.add", "args": [20, 22]}).json()["id"]
            deadline = time.monotonic() + 30
            while api.get(f"/tasks/{task_id}").json()["state"] != "succeeded":
                assert time.monotonic() < deadline, "the dev worker did not run the task"
                time.sleep(0.1)
            # Then the dev worker ran it, and Ctrl-C stops the stack and the server it started
            assert api.get(f"/tasks/{task_id}/result").json()["result"] == 42
        assert EmbeddedServer(tmp_path / "data").info() is not None
        dev.send_signal(signal.SIGINT)
        rest = stopped(dev)
        assert dev.returncode == 0, rest
        assert "stopped the embedded server" in rest
        assert EmbeddedServer(tmp_path / "data").info() is None
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
        if dev.stdout is not None:
            dev.stdout.close()


def test_ctrl_c_leaves_the_server_running_while_another_process_uses_it(tmp_path: Path, repo_root: Path) -> None:
    import redis

    dev = start_dev(tmp_path, repo_root, free_port())
    server = EmbeddedServer(tmp_path / "data")
    try:
        assert dev.stdout is not None
        while "try:" not in (line := dev.stdout.readline()):
            assert line, "dev exited"
        # Given another process of the same data directory using dev's server
        info = server.info()
        assert info is not None
        other = redis.Redis.from_url(info.url)
        other.ping()
        # When dev is stopped, the server it started stays up for that process
        dev.send_signal(signal.SIGINT)
        rest = stopped(dev)
        assert "left the embedded server running: 1 connection(s) of other processes use it" in rest, rest
        assert other.ping()
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
        if dev.stdout is not None:
            dev.stdout.close()
        server.stop()


def test_a_child_that_dies_ends_dev_with_its_error_in_one_line_and_exit_1(tmp_path: Path) -> None:
    # Given an app whose worker dies as it starts (its module fails in a worker process only)
    (tmp_path / "their_app.py").write_text(
        "import sys\nfrom taskplane import Taskplane\ntp = Taskplane('theirs')\n"
        "if 'worker' in sys.argv:\n    raise RuntimeError('cannot reach the mail server')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TASKPLANE_REDIS_URL", "REDIS_URL")}
    env["TASKPLANE_DATA_DIR"] = str(tmp_path / "data")
    # When `taskplane dev` runs it
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "taskplane",
            "dev",
            "-A",
            "their_app:tp",
            "--port",
            str(free_port()),
            "-c",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then dev exits 1 with the worker's error in one line, and stops the server it started
    assert done.returncode == 1, done.stdout + done.stderr
    errors = error_lines(done.stderr)
    assert len(errors) == 1 and errors[0].startswith("error: the worker exited with code 1: "), done.stderr
    assert errors[0].endswith(
        "RuntimeError: cannot reach the mail server (log: " + str(tmp_path / "data" / "dev" / "worker.log") + ")"
    )
    assert "taskplane: stopped the embedded server it started" in done.stderr
    assert EmbeddedServer(tmp_path / "data").info() is None
