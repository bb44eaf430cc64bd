"""What the demo shows: a live view of queues, throughput and progress, and the final report."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from taskplane_demo.report import Latency

if TYPE_CHECKING:
    from taskplane import Taskplane
    from taskplane_demo.servers import MailServer, WebhookReceiver


@dataclass
class LiveState:
    """What the live view tracks between refreshes."""

    tp: Taskplane
    mail: MailServer
    hooks: WebhookReceiver
    duration: float
    started: float = field(default_factory=time.monotonic)
    analysis_id: str | None = None
    user_check_id: str | None = None
    events: list[str] = field(default_factory=list)
    _finished: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=40))

    def note(self, event: str) -> None:
        """Add a line to the view's event list."""
        self.events.append(f"{time.monotonic() - self.started:5.1f}s  {event}")

    def render(self) -> Group:
        """The view as one rich renderable."""
        tp = self.tp
        states = tp.records.count_by_state()
        now = time.monotonic()
        done = states["succeeded"] + states["dead"] + states["cancelled"]
        self._finished.append((now, done))
        then, before = self._finished[0]
        rate = (done - before) / (now - then) if now > then else 0.0
        leader = tp.schedules.leader()
        elapsed = min(now - self.started, self.duration)
        header = Text.assemble(
            ("taskplane demo  ", "bold"),
            f"{elapsed:4.0f}s / {self.duration:.0f}s   throughput {rate:5.1f} tasks/s   ",
            f"leader: {leader.owner} (epoch {leader.epoch})" if leader else "leader: none",
        )
        queues = Table(title="queues", title_justify="left", expand=False)
        for column in ("queue", "tier", "ready", "delayed", "dead"):
            queues.add_column(column, justify="right" if column in ("ready", "delayed", "dead") else "left")
        for stats in tp.queues.stats():
            queues.add_row(
                stats["queue"], stats["tier"], str(stats["ready"]), str(stats["delayed"]), str(stats["dead"])
            )
        counts = Table(title="tasks", title_justify="left")
        for state in states:
            counts.add_column(state, justify="right")
        counts.add_row(*(str(count) for count in states.values()))
        deliveries = sum(1 for d in self.hooks.deliveries if d.status == 200)
        failures = sum(1 for d in self.hooks.deliveries if d.status >= 500)
        line = Text(
            f"emails received {len(self.mail.inbox)}   webhooks verified {deliveries}   webhook 5xx answers {failures}"
        )
        parts: list[Any] = [header, queues, counts, line, self._analysis()]
        parts.extend(Text(event, style="dim") for event in self.events[-6:])
        return Group(*parts)

    def _analysis(self) -> Any:
        if self.analysis_id is None:
            return Text("analysis: not started yet", style="dim")
        record = self.tp.status(self.analysis_id)
        if record is None:
            return Text("analysis: queued")
        current = float(record.fields.get("progress_current", 0))
        total = float(record.fields.get("progress_total", 6))
        step = record.fields.get("progress_step") or record.fields.get("step") or ""
        bar = ProgressBar(total=total, completed=current, width=30)
        table = Table.grid(padding=(0, 1))
        table.add_row(Text("analysis"), bar, Text(f"{current:.0f}/{total:.0f} {step} [{record.state}]"))
        return table


def print_report(
    console: Console,
    states: dict[str, int],
    per_task: dict[str, Any],
    latencies: list[Latency],
    dead: list[dict[str, Any]],
    schedules: list[dict[str, Any]],
    facts: dict[str, Any],
    checks: list[tuple[str, bool]],
) -> None:
    """Print the end-of-run report (every number comes from this run's records, servers and database)."""
    console.rule("report")
    console.print("tasks by state: " + ", ".join(f"{state}={count}" for state, count in states.items() if count))
    by_task = Table(title="tasks by name and state", title_justify="left")
    all_states = sorted({state for counter in per_task.values() for state in counter})
    for column in ("task", *all_states):
        by_task.add_column(column, justify="left" if column == "task" else "right")
    for name, counter in per_task.items():
        by_task.add_row(name, *(str(counter.get(state, 0)) for state in all_states))
    console.print(by_task)
    latency = Table(title="pickup latency (ready -> started; deliberate delays excluded)", title_justify="left")
    for column in ("tier", "tasks", "p50 ms", "p95 ms"):
        latency.add_column(column, justify="left" if column == "tier" else "right")
    for row in latencies:
        latency.add_row(row.tier, str(row.count), f"{row.p50_ms:.0f}", f"{row.p95_ms:.0f}")
    console.print(latency)
    dead_table = Table(title=f"dead letters ({len(dead)})", title_justify="left")
    for column in ("task", "reason", "attempts", "last error"):
        dead_table.add_column(column)
    for letter in dead:
        dead_table.add_row(
            letter["name"].rsplit(".", 1)[-1],
            letter["reason"],
            str(letter["attempts"]),
            f"{letter['exception_type']}: {letter['exception_message']}"[:70],
        )
    console.print(dead_table)
    fired = Table(title="schedule firings", title_justify="left")
    for column in ("schedule", "when", "by the leader", "by hand", "skipped", "last state"):
        fired.add_column(column)
    for status in schedules:
        fired.add_row(
            status["name"],
            status["schedule"],
            str(status["fired"]),
            str(status["manual"]),
            str(status["skipped"]),
            status["last_state"] or "",
        )
    console.print(fired)
    console.print("  ".join(f"{name}: {value}" for name, value in facts.items()), highlight=False)
    for label, ok in checks:
        console.print(("[green]ok  [/green] " if ok else "[red]FAIL[/red] ") + label, highlight=False)
