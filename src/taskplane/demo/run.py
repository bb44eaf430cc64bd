"""``taskplane demo``: start a worker on the embedded server, run a few jobs, print a report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any
from urllib.request import Request, urlopen

from rich.console import Console
from rich.table import Table

from taskplane.demo.tasks import build_report, call_flaky_api, resize_image, send_receipt, tp
from taskplane.embedded import EmbeddedServer
from taskplane.handle import TaskHandle
from taskplane.stack import free_port, start_api


def run_demo(console: Console, timeout: float = 60.0) -> int:
    """Run the showcase; returns the exit code (0 when every job ended as expected)."""
    server = EmbeddedServer(tp.settings.data_dir, tp.settings.redis_server)
    started_server = not tp.settings.redis_url and server.info() is None
    console.print(
        f"[bold]taskplane demo[/bold] -- Redis: {'embedded server' if not tp.settings.redis_url else 'configured URL'}"
    )
    tp.ping()
    _, token = tp.api_keys.create("demo", ["admin"], replace=True)
    api_port = free_port()
    api = start_api("taskplane.demo.tasks:tp", tp.redis_url, api_port, tp.settings.data_dir / "demo-api.log")
    base_url = f"http://127.0.0.1:{api_port}/api/v1"
    console.print(f"API {base_url} (docs /docs) -- key for this run: {token}", highlight=False, soft_wrap=True)
    log_path = tp.settings.data_dir / "demo-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "w")  # noqa: SIM115 - closed in finally
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "taskplane",
            "worker",
            "-A",
            "taskplane.demo.tasks:tp",
            "--concurrency",
            "2",
            "--hostname",
            f"demo-{os.getpid()}@localhost",
            "--loglevel",
            "WARNING",
        ],
        env={**os.environ, "TASKPLANE_REDIS_URL": tp.redis_url},
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    try:
        handles: dict[str, TaskHandle] = {}
        # One job goes through the HTTP API, and its event stream is followed while it runs.
        http_id = http_enqueue(base_url, token, "demo.resize_image", [100], {"steps": 8})
        handles["resize_image(100) via HTTP"] = TaskHandle(tp, http_id)
        followed: list[dict[str, Any]] = []
        follower = threading.Thread(target=lambda: followed.extend(follow_events(base_url, token, http_id)))
        follower.start()
        for image in range(1, 6):
            handles[f"resize_image({image})"] = resize_image.enqueue(image)
        handles["call_flaky_api"] = call_flaky_api.enqueue("https://payments.example/api")
        handles["send_receipt (critical)"] = send_receipt.enqueue(42)
        handles["resize_image countdown 2s"] = resize_image.enqueue_with((99,), countdown=2)
        for day in range(1, 11):
            handles[f"build_report({day}) 5/s"] = build_report.enqueue(day)
        console.print(f"enqueued {len(handles)} jobs; worker pid {worker.pid} (log: {log_path})")
        deadline = time.monotonic() + timeout
        for handle in handles.values():
            handle.wait(timeout=max(1.0, deadline - time.monotonic()))
        follower.join(max(1.0, deadline - time.monotonic()))
        steps = [event["data"].get("progress_current") for event in followed if event["event"] == "progress"]
        console.print(
            f"event stream of the HTTP job: {len(followed)} events, progress steps {steps}, "
            f"last state {followed[-1]['data']['state'] if followed else 'none'}"
        )
        return _report(console, handles)
    finally:
        api.stop()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=40)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log_file.close()
        if started_server:
            server.stop()
            console.print("stopped the embedded server the demo started")


def http_enqueue(base_url: str, token: str, task: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    """POST /tasks; returns the new task's id."""
    body = json.dumps({"task": task, "args": args, "kwargs": kwargs}).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with urlopen(Request(f"{base_url}/tasks", data=body, headers=headers), timeout=10) as response:
        return str(json.load(response)["id"])


def follow_events(base_url: str, token: str, task_id: str) -> list[dict[str, Any]]:
    """Read GET /tasks/{id}/events until the server ends the stream (the task finished)."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    request = Request(f"{base_url}/tasks/{task_id}/events", headers={"Authorization": f"Bearer {token}"})
    with urlopen(request, timeout=120) as response:
        for raw in response:
            line = raw.decode().rstrip("\r\n")
            if not line and current:
                events.append(current)
                current = {}
            elif line.startswith(("event:", "data:")):
                field, _, value = line.partition(":")
                current[field] = json.loads(value) if field == "data" else value.strip()
    return events


def _report(console: Console, handles: dict[str, TaskHandle]) -> int:
    table = Table(title="jobs", title_justify="left")
    for column in ("job", "queue", "state", "attempts", "runtime s", "result / error"):
        table.add_column(column)
    states: Counter[str] = Counter()
    for label, handle in handles.items():
        record = handle.record()
        states[record.state] += 1
        outcome = record.fields.get("result") or record.fields.get("error_message", "")
        table.add_row(
            label,
            record.queue,
            record.state,
            str(record.fields.get("attempts", "")),
            str(record.fields.get("runtime", "")),
            str(outcome)[:60],
        )
    console.print(table)
    console.print("tasks by state: " + ", ".join(f"{state}={count}" for state, count in sorted(states.items())))
    for letter in tp.dead_letters.find(limit=10):
        console.print(
            f"dead letter: {letter.name} in {letter.dead_queue}: {letter.reason} after {letter.attempts} attempts "
            f"({letter.exception_type}: {letter.exception_message})"
        )
    expected_dead = 1
    ok = states.get("succeeded", 0) == len(handles) - expected_dead and states.get("dead", 0) == expected_dead
    console.print("[green]demo finished as expected[/green]" if ok else "[red]demo ended unexpectedly[/red]")
    return 0 if ok else 1
