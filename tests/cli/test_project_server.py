"""The embedded server belongs to the project: every command finds the same one from any directory inside it,
says on stderr which server it used and whether it started it, and stops one it started when it ends (unless
another process uses it); ``taskplane redis status`` lists every one that runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskplane.core.settings import PROJECT_MARKERS, project_data_dir
from taskplane.redis.client import safe_url
from taskplane.redis.embedded import EmbeddedServer
from taskplane.redis.local_servers import running_servers
from tests.cli_output import notes


def test_the_data_directory_is_the_projects_from_any_directory_inside_it(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    (root / "src" / "shop" / "jobs").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    assert project_data_dir(root / "src" / "shop" / "jobs") == root / ".taskplane"
    assert project_data_dir(root) == root / ".taskplane"
    # a .taskplane/ of an earlier run nearer than the project root wins (a sub-project that ran on its own)
    (root / "src" / ".taskplane").mkdir()
    assert project_data_dir(root / "src" / "shop") == root / "src" / ".taskplane"
    # outside any project: the current directory
    bare = tmp_path / "bare" / "deeper"
    bare.mkdir(parents=True)
    marked = [d for d in bare.parents if (d / ".taskplane").is_dir() or any((d / m).exists() for m in PROJECT_MARKERS)]
    assert project_data_dir(bare) == (marked[0] if marked else bare) / ".taskplane"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A user's project (pyproject.toml, a jobs module, a subdirectory) and an environment with no Redis URL,
    no data directory and a private list of running servers."""
    root = tmp_path / "shop"
    (root / "reports").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    (root / "jobs.py").write_text(
        "from taskplane import Taskplane\ntp = Taskplane('shop')\n\n@tp.task(name='shop.add')\n"
        "def add(a: int, b: int) -> int:\n    return a + b\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TASKPLANE_REDIS_URL", "REDIS_URL", "TASKPLANE_DATA_DIR")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["PYTHONPATH"] = str(root)  # the app module, from any directory (as an installed project has it)
    yield root, env
    for server in running_servers(tmp_path / "state" / "taskplane" / "servers"):
        EmbeddedServer(server.data_dir).stop()


def taskplane(cwd: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskplane", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_subdirectory_uses_the_projects_server_and_one_shot_commands_leave_none_running(
    project: tuple[Path, dict[str, str]],
) -> None:
    root, env = project
    listing = Path(env["XDG_STATE_HOME"]) / "taskplane" / "servers"
    # Given a task enqueued from the project's root with no server running
    queued = taskplane(root, env, "enqueue", "shop.add", "-A", "jobs:tp", "--args", "[1, 2]")
    assert queued.returncode == 0, queued.stderr
    said = notes(queued.stderr)
    assert said[0].startswith(f"taskplane: using the embedded server of {root / '.taskplane'} (127.0.0.1:"), said
    assert said[0].endswith(", started it)") and said[-1] == "taskplane: stopped the embedded server it started"
    assert running_servers(listing) == []  # the one-shot command stopped what it started
    # When the queues are listed from a subdirectory
    listed = taskplane(root / "reports", env, "queues", "-A", "jobs:tp", "--json")
    # Then it is the same server (the task is there) and it says so
    assert listed.returncode == 0, listed.stderr
    assert {row["queue"]: row["ready"] for row in json.loads(listed.stdout)}["normal"] == 1
    assert f"embedded server of {root / '.taskplane'}" in notes(listed.stderr)[0]
    assert running_servers(listing) == []


def test_a_server_in_use_by_another_process_is_left_running_and_listed(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    listing = Path(env["XDG_STATE_HOME"]) / "taskplane" / "servers"
    started = taskplane(root, env, "redis", "start")
    assert started.returncode == 0 and "embedded server started" in started.stdout, started.stderr
    # A command that finds it running does not stop it
    listed = taskplane(root / "reports", env, "queues", "-A", "jobs:tp")
    assert listed.returncode == 0 and "already running" in notes(listed.stderr)[0], listed.stderr
    assert [server.data_dir for server in running_servers(listing)] == [str(root / ".taskplane")]
    status = taskplane(root / "reports", env, "redis", "status", "--json")
    shown = json.loads(status.stdout)
    assert status.returncode == 0 and shown["running"] and shown["dir"] == str(root / ".taskplane")
    assert [server["data_dir"] for server in shown["servers"]] == [str(root / ".taskplane")]
    # `redis stop --all` ends every one
    stopped = taskplane(root.parent, env, "redis", "stop", "--all")
    assert stopped.returncode == 0 and "embedded server stopped" in stopped.stdout, stopped.stderr
    assert running_servers(listing) == []
    assert taskplane(root, env, "redis", "status").returncode == 1


def test_a_configured_redis_is_named_without_its_password(redis_url: str, project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    listed = taskplane(root, {**env, "TASKPLANE_REDIS_URL": redis_url}, "queues", "-A", "jobs:tp")
    assert listed.returncode == 0, listed.stderr
    assert notes(listed.stderr) == [f"taskplane: using Redis at {safe_url(redis_url)}"] and "***" in safe_url(redis_url)
