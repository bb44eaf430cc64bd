"""``/api/v1/schedules`` over real HTTP and ``taskplane schedules`` as a subprocess: the same operations."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx

from taskplane.api import create_app
from tests.apps.sched_app import tp
from tests.integration.api_server import serve_in_thread

APP = ("-A", "tests.apps.sched_app:tp")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "taskplane", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_schedules_api_lists_pauses_resumes_and_runs(redis_url):
    tp.scheduler(owner="api-test").step()
    _, admin = tp.api_keys.create("admin", ["admin"])
    _, reader = tp.api_keys.create("reader", ["read"])
    headers = {"Authorization": f"Bearer {admin}"}
    with serve_in_thread(create_app(tp)) as base, httpx.Client(base_url=f"{base}/api/v1", headers=headers) as api:
        listed = api.get("/schedules").json()
        assert listed["leader"]["owner"] == "api-test" and listed["leader"]["epoch"] == 1
        by_name = {s["name"]: s for s in listed["schedules"]}
        assert sorted(by_name) == ["every-second", "nightly", "skipper"]
        nightly = by_name["nightly"]
        assert (nightly["task"], nightly["schedule"], nightly["queue"]) == (
            "s.tick",
            "cron 0 2 * * * (Europe/Berlin)",
            "low",
        )
        assert nightly["next_run_ms"] > 0 and nightly["last_run_ms"] is None and not nightly["paused"]

        paused = api.post("/schedules/nightly/pause")
        assert paused.status_code == 200 and paused.json()["paused"] and paused.json()["next_run_ms"] is None
        assert api.get("/schedules/nightly").json()["paused"]
        ran = api.post("/schedules/nightly/run")
        assert ran.status_code == 202
        task_id = ran.json()["task_id"]
        assert tp.status(task_id).state == "queued" and tp.status(task_id).queue == "low"
        shown = api.get("/schedules/nightly").json()
        assert (shown["last_task_id"], shown["last_state"], shown["manual"]) == (task_id, "queued", 1)
        assert api.post("/schedules/nightly/resume").json()["paused"] is False

        missing = api.get("/schedules/nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        read_only = httpx.post(
            f"{base}/api/v1/schedules/nightly/pause", headers={"Authorization": f"Bearer {reader}"}, timeout=30
        )
        assert read_only.status_code == 403


def test_schedules_cli_lists_pauses_resumes_and_runs(redis_url):
    listed = cli("schedules", *APP, "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["leader"] is None and [s["name"] for s in data["schedules"]] == ["every-second", "nightly", "skipper"]
    assert cli("schedules", "pause", "skipper", *APP).returncode == 0
    assert tp.schedules.status("skipper").paused  # stored in Redis: any later process sees it
    task_id = cli("schedules", *APP, "run", "skipper").stdout.strip()  # -A before the subcommand works too
    assert tp.status(task_id).name == "s.tick"
    table = cli("schedules", *APP)
    assert table.returncode == 0 and "paused" in table.stdout and "leader: none" in table.stdout
    assert cli("schedules", "resume", "skipper", *APP).returncode == 0
    assert not tp.schedules.status("skipper").paused
    unknown = cli("schedules", "pause", "nope", *APP)
    assert unknown.returncode == 1 and "no schedule named 'nope'" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
