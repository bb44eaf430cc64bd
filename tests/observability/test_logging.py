"""Structured logs: with TASKPLANE_LOG_FORMAT=json a real worker writes JSON lines, and every line written
inside a task (plain logging or Celery's task logger, in a prefork child) names the task attempt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.apps.ops_app import chatty
from tests.workers import StartWorker, wait_for


def json_lines(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_json_log_lines_inside_a_task_carry_id_name_queue_and_attempt(start_worker: StartWorker) -> None:
    worker = start_worker(
        queues="ops", concurrency=2, env={"TASKPLANE_LOG_FORMAT": "json"}, app="tests.apps.ops_app:tp"
    )
    handle = chatty.enqueue("ops:chatty-attempts")
    assert handle.result(timeout=30) == "logged"

    def task_lines() -> list[dict[str, Any]]:
        lines = json_lines(worker.log_path.read_text())
        return [line for line in lines if "attempt 2" in line["message"]] and lines

    lines = wait_for(task_lines, 15, "the second attempt's log lines")
    for attempt in (1, 2):
        written = [line for line in lines if line["message"].endswith(f"from attempt {attempt}")]
        assert {line["logger"] for line in written} == {"tests.ops", "tests.ops.task"}
        for line in written:
            assert line["task_id"] == handle.id
            assert line["task_name"] == "ops.chatty"
            assert line["queue"] == "ops"
            assert line["attempt"] == attempt - 1  # retries so far: the first attempt is 0
            assert line["level"] in ("INFO", "WARNING")
            assert line["ts"].endswith("Z")
    # lines outside any task are JSON too, without task fields
    ready = [line for line in lines if line["message"].endswith(" ready.")]
    assert ready and "task_id" not in ready[0]


def test_the_scheduler_logs_json_lines_too(redis_url: str, repo_root: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    log_path = tmp_path / "scheduler.log"
    with open(log_path, "w") as log:
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "taskplane", "scheduler", "-A", "tests.apps.ops_app:tp"],
            cwd=repo_root,
            env={**os.environ, "TASKPLANE_LOG_FORMAT": "json"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(lambda: "leads" in log_path.read_text(), 20, "the scheduler to lead")
        finally:
            scheduler.send_signal(signal.SIGTERM)
            scheduler.wait(15)
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert any(line["logger"] == "taskplane.scheduler" and "leads" in line["message"] for line in lines)
