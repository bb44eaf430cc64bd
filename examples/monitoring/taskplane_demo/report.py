"""The numbers of the demo's report, computed from task records: pickup latency per tier, counts per task."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from taskplane import TaskRecord

if TYPE_CHECKING:
    from taskplane import Taskplane


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in [0, 1]) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def pickup_ms(record: TaskRecord) -> int | None:
    """Milliseconds from when the task could first run to when its last attempt started.

    "Could run" is the latest of: created, its countdown/ETA or rate-limit slot, its retry's due time and
    a requeue -- so deliberate delays are not counted as waiting. None for a task that never started.
    """
    started = record.fields.get("started_ms")
    if not started:
        return None
    ready = max(record.fields.get(name) or 0 for name in ("created_ms", "eta_ms", "next_attempt_ms", "requeued_ms"))
    return max(0, int(started) - int(ready))


@dataclass(frozen=True)
class Latency:
    """Pickup latency of one tier."""

    tier: str
    count: int
    p50_ms: float
    p95_ms: float


def latency_by_tier(tp: Taskplane, records: Iterable[TaskRecord]) -> list[Latency]:
    """p50/p95 pickup latency of the started tasks, per tier, highest tier first."""
    waits: dict[str, list[float]] = defaultdict(list)
    for record in records:
        wait = pickup_ms(record)
        if wait is not None and record.queue in tp.topology:
            waits[tp.topology.get(record.queue).tier].append(wait)
    tiers = [spec.tier for spec in tp.topology.ordered()]
    return [
        Latency(tier, len(waits[tier]), percentile(waits[tier], 0.5), percentile(waits[tier], 0.95))
        for tier in dict.fromkeys(tiers)
        if waits[tier]
    ]


def all_records(tp: Taskplane) -> Iterator[TaskRecord]:
    """Every task record, newest first (paged through the index)."""
    cursor: str | None = None
    while True:
        page = tp.tasks(limit=500, cursor=cursor)
        yield from page.records
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def states_by_task(records: Iterable[TaskRecord]) -> dict[str, Counter[str]]:
    """For each task name (without its module prefix), how many records are in each state."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        table[record.name.rsplit(".", 1)[-1]][record.state] += 1
    return dict(sorted(table.items()))
