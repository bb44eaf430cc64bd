"""Cluster-wide task counters and histograms, kept in Redis so every process and host adds to one total.

Workers run tasks in prefork child processes on many hosts; an in-process Prometheus registry would see
one child's share only. Instead each event adds to a per-host Redis hash, usually in the same pipeline
as the record write it belongs to (no extra round trip), and a scrape reads those hashes back.
"""

from __future__ import annotations

import dataclasses
import json
import math
import socket
import time
from functools import cache, lru_cache
from typing import Any

from taskplane.core.protocol import Metric
from taskplane.redis.keys import Keys
from taskplane.redis.storage import Storage

INF = math.inf
#: Runtime buckets (seconds): Prometheus' defaults, as the Celery exporter uses.
RUNTIME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, INF)
#: Queue-wait buckets (seconds): from a few milliseconds to an hour of backlog.
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, INF)
#: A host that wrote no metrics for this long is dropped from the scrape (its pods are long gone).
HOST_RETENTION = 24 * 3600

#: Counter name -> its label names. Task counters follow the Celery exporter's names and labels.
COUNTERS: dict[str, tuple[str, ...]] = {
    Metric.SENT: ("name", "hostname", "queue_name"),
    Metric.RECEIVED: ("name", "hostname", "queue_name"),
    Metric.STARTED: ("name", "hostname", "queue_name"),
    Metric.SUCCEEDED: ("name", "hostname", "queue_name"),
    Metric.FAILED: ("name", "hostname", "queue_name", "exception"),
    Metric.RETRIED: ("name", "hostname", "queue_name"),
    Metric.REVOKED: ("name", "hostname", "queue_name"),
    Metric.REJECTED: ("name", "hostname", "queue_name"),
    Metric.RATE_LIMITED: ("name",),
    Metric.RETRIES: ("name",),
}
#: Counters also kept per minute (all tasks together) for the dashboard's charts, by their short name.
HISTORY: dict[str, str] = {
    Metric.SUCCEEDED: "succeeded",
    Metric.FAILED: "failed",
    Metric.RETRIED: "retried",
    Metric.REJECTED: "rejected",
    Metric.REVOKED: "revoked",
}
#: How long a minute's totals are kept: the last hour is charted, with a margin for clock skew.
HISTORY_SECONDS = 2 * 3600
#: Histogram name -> (label names, bucket upper bounds).
HISTOGRAMS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    Metric.RUNTIME: (("name", "hostname", "queue_name"), RUNTIME_BUCKETS),
    Metric.QUEUE_WAIT: (("name", "queue_name"), WAIT_BUCKETS),
}


@cache
def this_host() -> str:
    """The host name used for events of a producer process (workers use their Celery node name)."""
    return socket.gethostname()


@lru_cache(maxsize=4096)
def _field(metric: str, labels: tuple[str, ...]) -> str:
    """The hash field of one counter or histogram series (kept: every enqueue and run names one)."""
    return json.dumps([metric, *labels], separators=(",", ":"))


def bucket_bound(value: float, bounds: tuple[float, ...]) -> float:
    """The smallest bucket upper bound that holds ``value``."""
    for bound in bounds:
        if value <= bound:
            return bound
    return INF


@dataclasses.dataclass
class MetricChanges:
    """Counter increments and histogram observations of one host, written together."""

    hostname: str
    increments: dict[str, float] = dataclasses.field(default_factory=dict)  # field name -> amount
    minute: dict[str, int] = dataclasses.field(default_factory=dict)  # HISTORY short name -> amount

    def count(self, metric: str, *labels: str, amount: float = 1) -> MetricChanges:
        """Add ``amount`` to counter ``metric`` with these label values (in the order of COUNTERS)."""
        names = COUNTERS[metric]
        if len(labels) != len(names):
            raise ValueError(f"{metric} takes labels {names}, got {labels}")
        field = _field(metric, labels)
        self.increments[field] = self.increments.get(field, 0) + amount
        short = HISTORY.get(metric)
        if short is not None:
            self.minute[short] = self.minute.get(short, 0) + int(amount)
        return self

    def observe(self, histogram: str, seconds: float, *labels: str) -> MetricChanges:
        """Record one observation of ``seconds`` in ``histogram`` (its bucket, sum and count)."""
        names, bounds = HISTOGRAMS[histogram]
        if len(labels) != len(names):
            raise ValueError(f"{histogram} takes labels {names}, got {labels}")
        seconds = max(seconds, 0.0)
        bound = bucket_bound(seconds, bounds)
        for field, amount in (
            (_field(f"{histogram}:bucket", (*labels, repr(bound))), 1.0),
            (_field(f"{histogram}:sum", labels), seconds),
        ):
            self.increments[field] = self.increments.get(field, 0) + amount
        return self

    def merge(self, other: MetricChanges) -> None:
        """Add ``other``'s changes (same host) to these."""
        for field, amount in other.increments.items():
            self.increments[field] = self.increments.get(field, 0) + amount
        for short, count in other.minute.items():
            self.minute[short] = self.minute.get(short, 0) + count

    def __bool__(self) -> bool:
        return bool(self.increments)


def add_changes(pipe: Any, keys: Keys, changes: MetricChanges) -> None:
    """Queue the Redis commands that apply ``changes`` on ``pipe`` (a pipeline or a batch's pipeline)."""
    key = keys.metrics(changes.hostname)
    for field, amount in changes.increments.items():
        if float(amount).is_integer():
            pipe.hincrby(key, field, int(amount))
        else:
            pipe.hincrbyfloat(key, field, amount)
    now = time.time()
    pipe.zadd(keys.metrics_hosts(), {changes.hostname: now})
    if changes.minute:
        # Workers write through their per-process buffer (once a second), so this costs no command per task.
        minute = keys.metrics_minute(int(now // 60))
        for short, count in changes.minute.items():
            pipe.hincrby(minute, short, count)
        pipe.expire(minute, HISTORY_SECONDS)


class TaskMetrics:
    """Writes :class:`MetricChanges` to Redis and reads every host's totals back."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def changes(self, hostname: str | None = None) -> MetricChanges:
        """An empty batch of changes for ``hostname`` (default: this machine's host name)."""
        return MetricChanges(hostname or this_host())

    def write(self, changes: MetricChanges, pipe: Any = None) -> None:
        """Apply ``changes``; on ``pipe`` they go out with whatever else that pipeline sends."""
        if not changes:
            return
        target = pipe if pipe is not None else self._storage.client.pipeline(transaction=False)
        add_changes(target, self._storage.keys, changes)
        if pipe is None:
            target.execute()

    def read(self) -> dict[tuple[str, ...], float]:
        """Totals over every host: ``(metric, *label values) -> value``. Costs one HGETALL per host.

        Hosts silent for longer than HOST_RETENTION are removed first.
        """
        client = self._storage.client
        keys = self._storage.keys
        cutoff = time.time() - HOST_RETENTION
        stale = client.zrangebyscore(keys.metrics_hosts(), "-inf", cutoff)
        if stale:
            pipe = client.pipeline(transaction=False)
            pipe.zrem(keys.metrics_hosts(), *stale)
            pipe.delete(*(keys.metrics(host) for host in stale))
            pipe.execute()
        hosts = client.zrange(keys.metrics_hosts(), 0, -1)
        pipe = client.pipeline(transaction=False)
        for host in hosts:
            pipe.hgetall(keys.metrics(host))
        totals: dict[tuple[str, ...], float] = {}
        for data in pipe.execute():
            for field, value in data.items():
                try:
                    parts = tuple(str(part) for part in json.loads(field))
                    amount = float(value)
                except (ValueError, TypeError):
                    continue  # not ours: skip rather than fail the whole scrape
                totals[parts] = totals.get(parts, 0.0) + amount
        return totals

    def history(self, minutes: int = 60) -> list[dict[str, int]]:
        """What finished in each of the last ``minutes`` minutes (all hosts), oldest first: one HGETALL per
        minute in one round trip."""
        current = int(time.time() // 60)
        first = current - minutes + 1
        pipe = self._storage.client.pipeline(transaction=False)
        for minute in range(first, current + 1):
            pipe.hgetall(self._storage.keys.metrics_minute(minute))
        rows = []
        for minute, data in zip(range(first, current + 1), pipe.execute(), strict=True):
            row = {"minute_ms": minute * 60_000}
            row.update({short: int(data.get(short, 0)) for short in HISTORY.values()})
            rows.append(row)
        return rows
