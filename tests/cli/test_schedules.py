"""``taskplane schedules`` as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.apps.sched_app import tp
from tests.cli_output import error_lines

APP = ("-A", "tests.apps.sched_app:tp")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "taskplane", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_schedules_cli_lists_pauses_resumes_and_runs(redis_url: str) -> None:
    listed = cli("schedules", *APP, "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["leader"] is None and [s["name"] for s in data["schedules"]] == ["every-second", "nightly", "skipper"]
    assert cli("schedules", "pause", "skipper", *APP).returncode == 0
    assert tp.schedules.status("skipper").paused  # stored in Redis: any later process sees it
    task_id = cli("schedules", *APP, "run", "skipper").stdout.strip()  # -A before the subcommand works too
    assert tp.handle(task_id).record().name == "s.tick"
    table = cli("schedules", *APP)
    assert table.returncode == 0 and "paused" in table.stdout and "leader: none" in table.stdout
    assert cli("schedules", "resume", "skipper", *APP).returncode == 0
    assert not tp.schedules.status("skipper").paused
    unknown = cli("schedules", "pause", "nope", *APP)
    assert unknown.returncode == 1 and "no schedule named 'nope'" in unknown.stderr
    assert len(error_lines(unknown.stderr)) == 1
