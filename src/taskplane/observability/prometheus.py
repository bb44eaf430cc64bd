"""Prometheus collectors: every scrape reads the cluster-wide state from Redis.

A scrape costs a handful of pipelined round trips and O(queues + hosts + schedules) Redis commands,
never O(tasks): counters are running totals, queue depths are LLEN/ZCARD.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from taskplane.client.queues import queue_lengths
from taskplane.redis.client import CONNECTION_ERRORS
from taskplane.stores.metrics import COUNTERS, HISTOGRAMS, TaskMetrics
from taskplane.stores.workers import known_workers

if TYPE_CHECKING:
    from taskplane.app import Taskplane

log = logging.getLogger("taskplane.metrics")

_HELP = {
    "celery_task_sent_total": "Tasks published to a queue.",
    "celery_task_received_total": "Task messages received by a worker.",
    "celery_task_started_total": "Task attempts started.",
    "celery_task_succeeded_total": "Task attempts that succeeded.",
    "celery_task_failed_total": "Tasks that failed for good (dead-lettered), by exception type.",
    "celery_task_retried_total": "Task attempts that failed and were scheduled for a retry.",
    "celery_task_revoked_total": "Tasks cancelled before or while running.",
    "celery_task_rejected_total": "Messages rejected without running: poison, unknown task, malformed.",
    "taskplane_rate_limited_total": "Task deliveries put back to wait for a cluster-wide rate-limit slot.",
    "taskplane_retries_total": "Retries scheduled (all hosts and queues).",
    "celery_task_runtime": "Seconds a task attempt ran (succeeded or failed).",
    "taskplane_task_queue_wait_seconds": "Seconds from ready (enqueued, or due after a deliberate delay) to start.",
}
#: Exposition content type of :func:`render`.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class TaskplaneCollector(Collector):
    """Collects taskplane's and the Celery exporter's metrics for one app from Redis."""

    def __init__(self, tp: Taskplane) -> None:
        self._tp = tp

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family; if Redis is unreachable only ``taskplane_redis_up 0``."""
        up = GaugeMetricFamily("taskplane_redis_up", "1 if the scrape could read Redis, else 0.")
        try:
            families = [*self._task_families(), *self._state_families()]
        except CONNECTION_ERRORS as exc:
            log.error("metrics scrape: Redis unreachable at %s: %s", self._tp.redis_url, exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _task_families(self) -> list[Metric]:
        totals = TaskMetrics(self._tp.storage).read()
        families: list[Metric] = []
        for metric, label_names in COUNTERS.items():
            counter = CounterMetricFamily(metric, _HELP[metric], labels=label_names)
            for key, value in sorted(totals.items()):
                if key[0] == metric:
                    counter.add_metric(list(key[1:]), value)
            families.append(counter)
        for histogram, (label_names, bounds) in HISTOGRAMS.items():
            family = HistogramMetricFamily(histogram, _HELP[histogram], labels=label_names)
            per_labels: dict[tuple[str, ...], dict[float, float]] = {}
            sums: dict[tuple[str, ...], float] = {}
            for key, value in totals.items():
                if key[0] == f"{histogram}:bucket":
                    bound = float(key[-1])
                    counts = per_labels.setdefault(key[1:-1], {})
                    counts[bound] = counts.get(bound, 0) + value
                elif key[0] == f"{histogram}:sum":
                    sums[key[1:]] = sums.get(key[1:], 0.0) + value
            for labels in sorted(per_labels):
                running = 0.0
                buckets = []
                for bound in bounds:
                    running += per_labels[labels].get(bound, 0)
                    buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
                family.add_metric(list(labels), buckets, sums.get(labels, 0.0))
            families.append(family)
        return families

    def _state_families(self) -> list[Metric]:
        tp = self._tp
        names = tp.topology.names()
        length = GaugeMetricFamily("celery_queue_length", "Messages ready in a queue.", labels=["queue_name"])
        for queue, count in queue_lengths(tp, names).items():
            length.add_metric([queue], count)
        delayed = GaugeMetricFamily(
            "taskplane_delayed", "Messages waiting for their time (countdown, retry, rate limit).", labels=["queue"]
        )
        for queue, count in tp.delayed.counts(names).items():
            delayed.add_metric([queue], count)
        dead = GaugeMetricFamily("taskplane_dead_letters", "Dead letters kept for a queue.", labels=["queue"])
        for queue, count in sorted(tp.dead_letters.counts().items()):
            dead.add_metric([queue], count)
        up = GaugeMetricFamily(
            "celery_worker_up", "1 while a worker sends heartbeats, 0 once it went silent.", labels=["hostname"]
        )
        active = GaugeMetricFamily(
            "celery_worker_tasks_active", "Tasks a worker is running now.", labels=["hostname"]
        )
        for hostname, alive, running in known_workers(tp.storage):
            up.add_metric([hostname], 1 if alive else 0)
            active.add_metric([hostname], running)
        leader = GaugeMetricFamily("taskplane_scheduler_leader", "1 while a scheduler holds the leader lease.")
        leader.add_metric([], 1 if tp.schedules.leader() is not None else 0)
        last_run = GaugeMetricFamily(
            "taskplane_schedule_last_run_timestamp",
            "Unix time of a schedule's last firing.",
            labels=["schedule"],
        )
        for schedule, stamp_ms in tp.schedules.last_runs().items():
            if stamp_ms is not None:
                last_run.add_metric([schedule], stamp_ms / 1000)
        return [length, delayed, dead, up, active, leader, last_run]


def registry_for(tp: Taskplane) -> CollectorRegistry:
    """A registry holding only ``tp``'s collector (no process metrics of the scraping process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TaskplaneCollector(tp))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text exposition format."""
    return generate_latest(registry)
