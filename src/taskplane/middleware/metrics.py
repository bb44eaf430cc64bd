"""Task metrics: sent, received, started, succeeded, revoked, runtime and queue wait, kept cluster-wide in Redis."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from celery import signals

from taskplane.core.protocol import Header, Metric, TaskState
from taskplane.middleware.base import Middleware, Publish, Run, WorkerContext
from taskplane.stores.bundle import Stores
from taskplane.stores.metric_buffer import MetricBuffer
from taskplane.stores.metrics import MetricChanges, this_host


class Metrics(Middleware):
    """Counts every step of the lifecycle in the process's :class:`MetricBuffer`, written once a second
    and when the process ends: no Redis command per enqueue or per task.

    Retries, rate-limit waits and dead letters are counted where they happen (their own middleware and
    the failure path).
    """

    def __init__(self, stores: Stores) -> None:
        self._stores = stores
        self._buffer = MetricBuffer(lambda: stores.metrics)
        self._worker: WorkerContext | None = None

    def after_publish(self, publishes: Sequence[Publish]) -> None:
        """Count the new tasks among ``publishes`` (all of one task and queue) as sent, once they are out."""
        fresh = sum(1 for publish in publishes if publish.fresh)
        if fresh:
            first, host = publishes[0], this_host()
            self._buffer.count(host, Metric.SENT, first.name, host, first.queue, amount=fresh)

    def after_start(self, run: Run) -> None:
        """Count the start and observe how long the task waited since it was ready (after the start
        write: a task found cancelled, poison or already done did not start)."""
        changes = self._changes(run).count(Metric.STARTED, run.name, run.worker, run.queue)
        ready_ms = run.headers.get(Header.READY)
        if ready_ms:
            changes.observe(Metric.QUEUE_WAIT, run.started - int(ready_ms) / 1000, run.name, run.queue)
        self._buffer.add(changes)

    def after_run(self, run: Run) -> None:
        """Count a success (and its runtime) or a cancellation."""
        changes = self._changes(run)
        if run.outcome == TaskState.CANCELLED:
            changes.count(Metric.REVOKED, run.name, run.worker, run.queue)
        else:
            changes.count(Metric.SUCCEEDED, run.name, run.worker, run.queue)
            changes.observe(Metric.RUNTIME, time.time() - run.started, run.name, run.worker, run.queue)
        self._buffer.add(changes)

    def on_failure(self, run: Run, exc: Exception) -> None:
        """Observe the failed attempt's runtime."""
        changes = self._changes(run).observe(Metric.RUNTIME, time.time() - run.started, run.name, run.worker, run.queue)
        self._buffer.add(changes)

    def on_time_limit(self, run: Run, timeout: float) -> None:
        """Observe the killed attempt's runtime: its limit."""
        changes = self._changes(run).observe(Metric.RUNTIME, timeout, run.name, run.worker, run.queue)
        self._buffer.add(changes)

    def _changes(self, run: Run) -> MetricChanges:
        return MetricChanges(run.worker or this_host())

    # -- messages received by a worker's main process ---------------------------------------------

    def on_worker_start(self, worker: WorkerContext) -> None:
        """Count received messages (in the buffer, like every other count of a worker process)."""
        self._worker = worker
        signals.task_received.connect(self._on_received, weak=False)
        signals.worker_process_shutdown.connect(self._process_ends, weak=False)

    def on_worker_stop(self, worker: WorkerContext) -> None:
        """Write the last counts."""
        signals.task_received.disconnect(self._on_received)
        signals.worker_process_shutdown.disconnect(self._process_ends)
        self._buffer.flush()

    def _process_ends(self, **kwargs: Any) -> None:
        """A pool process ends (shutdown or recycling): write what it counted."""
        self._buffer.flush()

    def flush(self) -> None:
        """Write what this process counted so far now, instead of within the second."""
        self._buffer.flush()

    def _on_received(self, sender: Any = None, request: Any = None, **kwargs: Any) -> None:
        worker = self._worker
        if request is None or worker is None or getattr(sender, "app", None) is not worker.app:
            return
        queue = (request.delivery_info or {}).get("routing_key") or ""
        self._buffer.add(MetricChanges(worker.hostname).count(Metric.RECEIVED, request.name, worker.hostname, queue))
