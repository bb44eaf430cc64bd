"""Prometheus collectors: every scrape reads the cluster-wide state from Redis.

A scrape costs a handful of pipelined round trips and O(queues + hosts + schedules) Redis commands,
never O(tasks): counters are running totals, queue depths are LLEN/ZCARD.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from taskplane.core.protocol import Metric as MetricName
from taskplane.core.topology import Topology
from taskplane.redis.client import CONNECTION_ERRORS
from taskplane.stores.bundle import Stores
from taskplane.stores.metrics import COUNTERS, HISTOGRAMS

log = logging.getLogger("taskplane.metrics")

_HELP: dict[str, str] = {
    MetricName.SENT: "Tasks published to a queue.",
    MetricName.RECEIVED: "Task messages received by a worker.",
    MetricName.STARTED: "Task attempts started.",
    MetricName.SUCCEEDED: "Task attempts that succeeded.",
    MetricName.FAILED: "Tasks that failed for good (dead-lettered), by exception type.",
    MetricName.RETRIED: "Task attempts that failed and were scheduled for a retry.",
    MetricName.REVOKED: "Tasks cancelled before or while running.",
    MetricName.REJECTED: "Messages rejected without running: poison, unknown task, malformed.",
    MetricName.RATE_LIMITED: "Task deliveries put back to wait for a cluster-wide rate-limit slot.",
    MetricName.RETRIES: "Retries scheduled (all hosts and queues).",
    MetricName.RUNTIME: "Seconds a task attempt ran (succeeded or failed).",
    MetricName.QUEUE_WAIT: "Seconds from ready (enqueued, or due after a deliberate delay) to start.",
}
#: Exposition content type of :func:`render`.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class TaskplaneCollector(Collector):
    """Collects taskplane's and the Celery exporter's metrics for one app from Redis."""

    def __init__(self, stores: Stores, topology: Topology, schedule_names: Callable[[], list[str]]) -> None:
        self._stores = stores
        self._topology = topology
        self._schedule_names = schedule_names

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family; if Redis is unreachable only ``taskplane_redis_up 0``."""
        up = GaugeMetricFamily(MetricName.REDIS_UP, "1 if the scrape could read Redis, else 0.")
        try:
            families = [*self._task_families(), *self._state_families()]
        except CONNECTION_ERRORS as exc:
            log.error("metrics scrape: Redis unreachable at %s: %s", self._stores.redis_url, exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _task_families(self) -> list[Metric]:
        totals = self._stores.metrics.read()
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
        stores = self._stores
        names = self._topology.names()
        length = GaugeMetricFamily(MetricName.QUEUE_LENGTH, "Messages ready in a queue.", labels=["queue_name"])
        for queue, count in stores.queues.lengths(names).items():
            length.add_metric([queue], count)
        delayed = GaugeMetricFamily(
            MetricName.DELAYED, "Messages waiting for their time (countdown, retry, rate limit).", labels=["queue"]
        )
        for queue, count in stores.delayed.counts(names).items():
            delayed.add_metric([queue], count)
        dead = GaugeMetricFamily(MetricName.DEAD_LETTERS, "Dead letters kept for a queue.", labels=["queue"])
        for queue, count in sorted(stores.dead_letters.counts().items()):
            dead.add_metric([queue], count)
        up = GaugeMetricFamily(
            MetricName.WORKER_UP, "1 while a worker sends heartbeats, 0 once it went silent.", labels=["hostname"]
        )
        active = GaugeMetricFamily(MetricName.WORKER_ACTIVE, "Tasks a worker is running now.", labels=["hostname"])
        for hostname, alive, running in stores.workers.known():
            up.add_metric([hostname], 1 if alive else 0)
            active.add_metric([hostname], running)
        leader = GaugeMetricFamily(MetricName.SCHEDULER_LEADER, "1 while a scheduler holds the leader lease.")
        leader.add_metric([], 1 if stores.schedules.leader() is not None else 0)
        last_run = GaugeMetricFamily(
            MetricName.SCHEDULE_LAST_RUN,
            "Unix time of a schedule's last firing.",
            labels=["schedule"],
        )
        for schedule, stamp_ms in stores.schedules.last_runs(self._schedule_names()).items():
            if stamp_ms is not None:
                last_run.add_metric([schedule], stamp_ms / 1000)
        return [length, delayed, dead, up, active, leader, last_run]


def registry_for(collector: TaskplaneCollector) -> CollectorRegistry:
    """A registry holding only ``collector`` (no process metrics of the scraping process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text exposition format."""
    return generate_latest(registry)
