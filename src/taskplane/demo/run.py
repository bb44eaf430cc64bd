"""``taskplane demo``: start a worker on the embedded server, run a few jobs, print a report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

from rich.console import Console
from rich.table import Table

from taskplane.demo.tasks import build_report, call_flaky_api, resize_image, send_receipt, tp
from taskplane.embedded import EmbeddedServer
from taskplane.handle import TaskHandle


def run_demo(console: Console, timeout: float = 60.0) -> int:
    """Run the showcase; returns the exit code (0 when every job ended as expected)."""
    server = EmbeddedServer(tp.settings.data_dir, tp.settings.redis_server)
    started_server = not tp.settings.redis_url and server.info() is None
    console.print(
        f"[bold]taskplane demo[/bold] -- Redis: {'embedded server' if not tp.settings.redis_url else 'configured URL'}"
    )
    tp.ping()
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
        return _report(console, handles)
    finally:
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
