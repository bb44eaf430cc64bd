"""Every way of declaring a task (``@tp.task``, ``@tp.celery.task``, ``@shared_task``, with and without
``bind=True``) enqueues and runs the same way from Python, the CLI and the HTTP API; arguments are checked
against what a caller passes (a bound task's ``self`` is not an argument)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskplane import TaskArgumentsError
from taskplane.api import create_app
from tests.api_server import serve_in_thread
from tests.apps.declaring_app import TASKS, tp
from tests.workers import StartWorker

APP = "tests.apps.declaring_app:tp"
KWARGS = ["--kwargs", '{"b": 3}']


def test_every_declaration_is_a_taskplane_task_with_checked_arguments() -> None:
    assert set(TASKS) <= set(tp.task_names())
    for name in TASKS:
        tp.check_arguments(name, [2], {"b": 3})
        with pytest.raises(TaskArgumentsError, match="missing a required argument: 'a'"):
            tp.check_arguments(name, [], {"b": 3})
        with pytest.raises(TaskArgumentsError, match="too many positional arguments"):
            tp.check_arguments(name, [1, 2, 3], {})


def test_every_declaration_runs_the_same_from_python_the_cli_and_the_api(
    redis_url: str, repo_root: Path, start_worker: StartWorker
) -> None:
    start_worker(app=APP)
    token = tp.api_keys.create("declaring", ["admin"])[1]
    results: dict[tuple[str, str], Any] = {}
    with serve_in_thread(create_app(tp)) as base_url:
        for name, bound in TASKS.items():
            task: Any = tp.get_task(name)
            results[(name, "delay")] = task.delay(2, b=3).get(timeout=30)
            results[(name, "enqueue")] = task.enqueue(2, b=3).result(timeout=30)
            results[(name, "by name")] = tp.enqueue(name, [2], {"b": 3}).result(timeout=30)
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "taskplane",
                    "enqueue",
                    name,
                    "-A",
                    APP,
                    "--args",
                    "[2]",
                    *KWARGS,
                    "--wait",
                    "--json",
                ],
                cwd=repo_root,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            results[(name, "cli")] = json.loads(done.stdout)["result"]
            headers = {"Authorization": f"Bearer {token}"}
            posted = httpx.post(
                f"{base_url}/api/v1/tasks", json={"task": name, "args": [2], "kwargs": {"b": 3}}, headers=headers
            )
            assert posted.status_code == 202, posted.text
            task_id = posted.json()["id"]
            results[(name, "api")] = tp.handle(task_id).result(timeout=30)
            for way in ("delay", "enqueue", "by name", "cli", "api"):
                assert results[(name, way)] == [5, bound], (name, way, results[(name, way)])
    records = tp.tasks(state="succeeded", limit=100).records
    assert len(records) == 5 * len(TASKS)
