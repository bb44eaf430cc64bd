"""The demo's scenario, run once the environment names this run's server and local servers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import func, select

from taskplane.stack import free_port
from taskplane_demo import report
from taskplane_demo.models import Alert, Analysis, Monitor, Snapshot
from taskplane_demo.run import (
    BROKEN_MONITOR,
    MONITORS,
    UNFINISHED,
    Api,
    PageChanger,
    live,
    pause,
    start_children,
    today,
    wait_until,
)
from taskplane_demo.servers import MailServer, Sites, WebhookReceiver
from taskplane_demo.tasks import check_monitor_task, session, tp
from taskplane_demo.view import LiveState, print_report


def seed(sites: Sites, hooks: WebhookReceiver) -> None:
    """20 monitors, each mailed on change; monitor 20's webhook endpoint is broken."""
    with session() as db:
        for number in range(1, MONITORS + 1):
            db.add(
                Monitor(
                    id=number,
                    name=f"competitor-{number:02d}",
                    url=sites.url(number),
                    interval_s=5,
                    alert_email=f"team-{number % 3}@example.test",
                    webhook_url=hooks.url("broken" if number == BROKEN_MONITOR else f"team-{number % 3}"),
                )
            )
        db.commit()


def run(
    console: Console,
    duration: float,
    serve: bool,
    home: Path,
    sites: Sites,
    hooks: WebhookReceiver,
    mail: MailServer,
    stoppers: list[Callable[[], object]],
) -> int:
    """Start the stack, play the scenario for ``duration`` seconds, report; returns the exit code."""
    console.print(f"[bold]taskplane demo[/bold]: starting the stack (logs under {home / 'logs'}) ...")
    tp.storage.client.flushall()  # the demo's own private server: every number in the report is this run's
    seed(sites, hooks)
    port = free_port()
    children = start_children(home, port, stoppers)
    _, token = tp.api_keys.create("demo", ["admin"], replace=True)
    api = Api(f"http://127.0.0.1:{port}/api/v1", token)
    wait_until(lambda: len(tp.workers.live()) >= 2, 60, "both workers")
    wait_until(tp.schedules.leader, 30, "a scheduler to lead")
    pids = ", ".join(f"{name} {child.pid}" for name, child in children.items())
    console.print(f"stack up: {pids}; API {api.base_url} (docs /docs)", highlight=False, soft_wrap=True)

    state = LiveState(tp, mail, hooks, duration)
    changer = PageChanger(sites, every=3.0)
    stoppers.append(changer.stopped.set)
    steps = _scenario(api, sites, state, duration)
    with live(console, state.render):
        api.call("POST", "/schedules/scan-monitors/run")
        state.note("scan-monitors fired by hand: first look at every page")
        changer.start()
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < duration:
            while steps and steps[0][0] <= elapsed:
                steps.pop(0)[1]()
            pause(0.25)
        changer.stopped.set()
        api.call("POST", "/schedules/scan-monitors/pause")
        state.note("time is up: scan-monitors paused; letting queued work finish")
        _drain(timeout=60)
    console.print()
    code = _report(console, state, changer)
    if serve:
        api.call("POST", "/schedules/scan-monitors/resume")
        console.print(f"[bold]serving[/bold]: API {api.base_url}  key {token}", highlight=False, soft_wrap=True)
        dashboard = api.base_url.removesuffix("/api/v1") + "/"
        console.print(f"[bold]dashboard[/bold]: {dashboard}  (sign in with the key)", highlight=False, soft_wrap=True)
        console.print(f"try: curl -H 'Authorization: Bearer {token}' {api.base_url}/schedules   (Ctrl-C stops)")
        while all(child.running() for child in children.values()):
            pause(0.5)
        console.print("[red]a part of the stack exited[/red]")
        return 1
    return code


def _scenario(api: Api, sites: Sites, state: LiveState, duration: float) -> list[tuple[float, Callable[[], None]]]:
    """What happens when, as (seconds into the run, action)."""

    def break_one() -> None:
        sites.change(BROKEN_MONITOR)
        state.note(f"competitor-{BROKEN_MONITOR} changed; its webhook endpoint answers 503")

    def backlog_then_user() -> None:
        for number in range(1, MONITORS + 1):
            check_monitor_task.enqueue(number)
        task_id = api.enqueue("monitoring.check_monitor_user_triggered", [1])
        state.user_check_id = task_id
        state.note(f"{MONITORS} normal checks queued, then a user asked for one (critical): {task_id[:8]}")

    def analysis() -> None:
        state.analysis_id = api.enqueue("monitoring.run_analysis_task", [1])
        state.note("analysis of competitor-01 queued over HTTP")

    def nightly() -> None:
        tp.enqueue("monitoring.aggregate_snapshots_task", [today()])
        api.call("POST", "/schedules/train-weekly/run")
        api.call("POST", "/schedules/cleanup-daily/run")
        state.note("aggregation (today), anomaly training and cleanup run by hand")

    return [
        (min(2.0, duration * 0.05), break_one),
        (duration * 0.3, backlog_then_user),
        (duration * 0.45, analysis),
        (duration * 0.7, nightly),
    ]


def _drain(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = tp.records.count_by_state()
        if not any(counts[state] for state in UNFINISHED):
            return
        pause(0.5)


def _report(console: Console, state: LiveState, changer: Any) -> int:
    records = list(report.all_records(tp))
    with session() as db:
        snapshots = db.scalar(select(func.count()).select_from(Snapshot)) or 0
        changes = db.scalar(select(func.count()).select_from(Snapshot).where(Snapshot.changed)) or 0
        alerts = db.scalar(select(func.count()).select_from(Alert)) or 0
        analyses = db.scalar(select(func.count()).select_from(Analysis)) or 0
        anomalous = db.scalar(select(func.count()).select_from(Snapshot).where(Snapshot.anomalous)) or 0
    dead = [letter.to_dict() for letter in tp.dead_letters.find(limit=50)]
    schedules = [status.to_dict() for status in tp.schedules.statuses()]
    verified = sum(1 for d in state.hooks.deliveries if d.status == 200 and d.signature_ok)
    by_id = {record.id: record for record in records}
    user = by_id.get(state.user_check_id or "")
    analysis = by_id.get(state.analysis_id or "")
    states = tp.records.count_by_state()
    facts = {
        "pages changed": changer.changes + 1,
        "snapshots": snapshots,
        "changes detected": changes,
        "alerts": alerts,
        "emails received": len(state.mail.inbox),
        "webhooks verified": verified,
        "webhook 5xx": sum(1 for d in state.hooks.deliveries if d.status >= 500),
        "analyses": analyses,
        "anomalous checks": anomalous,
    }
    scan = next(status for status in schedules if status["name"] == "scan-monitors")
    checks = [
        ("changes were detected and alerts mailed", changes > 0 and len(state.mail.inbox) > 0),
        ("webhooks arrived with valid signatures", verified > 0),
        (
            "the broken endpoint's webhook was retried into the dead letters",
            any(d["name"].endswith("send_alert_webhook") and d["reason"] == "retries_exhausted" for d in dead),
        ),
        ("the user-triggered check succeeded", user is not None and user.state == "succeeded"),
        (
            "the analysis reported every step and succeeded",
            analysis is not None
            and analysis.state == "succeeded"
            and analysis.fields.get("progress_current") == analysis.fields.get("progress_total"),
        ),
        ("the scheduler fired scan-monitors on its own", scan["fired"] > 0),
        ("no task was left unfinished", not any(states[name] for name in UNFINISHED)),
    ]
    print_report(
        console,
        states,
        report.states_by_task(records),
        report.latency_by_tier(tp, records),
        dead,
        schedules,
        facts,
        checks,
    )
    if user is not None and "started_ms" in user.fields:
        overtaken = [
            record
            for record in records
            if record.queue == "normal"
            and record.fields["created_ms"] <= user.fields["created_ms"]
            and record.fields.get("started_ms", 0) > user.fields["started_ms"]
        ]
        console.print(
            f"the user-triggered check waited {report.pickup_ms(user)} ms for a worker and started before "
            f"{len(overtaken)} normal tasks that were queued ahead of it",
            highlight=False,
        )
    ok = all(passed for _, passed in checks)
    console.print("[green]demo finished: every check passed[/green]" if ok else "[red]demo: some checks failed[/red]")
    return 0 if ok else 1
