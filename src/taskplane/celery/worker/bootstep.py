"""The worker's maintenance bootstep (main process): delayed mover, lease renewal, heartbeats,
cancellation enforcement, record trimming, and the bound on warm shutdown."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from typing import Any

from celery import bootsteps, signals
from celery.worker import state

from taskplane.observability import logging as log_format_module
from taskplane.stores.records import now_ms
from taskplane.stores.metrics import MetricChanges
from taskplane.stores.workers import HEARTBEAT_INTERVAL, beat, forget
from taskplane.celery.worker.periodic import Periodic

log = logging.getLogger("taskplane.worker")


class TaskplaneWorkerStep(bootsteps.StartStopStep):
    """Starts taskplane's maintenance threads in every worker and bounds its warm shutdown."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **options: Any) -> None:
        super().__init__(worker, **options)
        self._threads: list[Periodic] = []
        self._worker = worker
        self._shutdown_watch: threading.Thread | None = None
        self._received = MetricChanges(worker.hostname or "")
        self._received_lock = threading.Lock()
        # Celery has set up its log handlers by now; pool children are forked later and set up again.
        log_format = worker.app.taskplane.settings.log_format
        log_format_module.configure(log_format)
        signals.worker_process_init.connect(lambda **_: log_format_module.configure(log_format), weak=False)

    def start(self, worker: Any) -> None:
        """Start the maintenance threads."""
        tp = worker.app.taskplane
        settings = tp.settings
        self._started_at = time.time()
        self._threads = [
            Periodic("delayed-mover", settings.mover_interval, lambda: tp.delayed.move_due(tp.topology.names())),
            Periodic("lease-renewal", settings.lease_timeout / 3, self._renew_leases),
            Periodic("heartbeat", HEARTBEAT_INTERVAL, self._heartbeat),
            Periodic("cancel-watch", 1.0, self._terminate_cancelled),
            Periodic("record-trim", 60.0, lambda: tp.records.trim(tp.task_names(), tp.topology.names())),
            Periodic("metrics-flush", 1.0, self._flush_received),
        ]
        for thread in self._threads:
            thread.start()
        signals.worker_shutting_down.connect(self._on_shutting_down, weak=False)
        signals.task_received.connect(self._on_received, weak=False)
        # Sent after the pool has drained (blueprint steps are stopped before the pool is): leases are
        # renewed and counts kept until the very end.
        signals.worker_shutdown.connect(self._on_worker_shutdown, weak=False)

    def _on_worker_shutdown(self, sender: Any = None, **kwargs: Any) -> None:
        """Stop the threads once the worker is done, flush the last counts, and leave the worker list."""
        if sender is not self._worker:
            return
        worker = self._worker
        for thread in self._threads:
            thread.stop()
        signals.task_received.disconnect(self._on_received)
        signals.worker_shutdown.disconnect(self._on_worker_shutdown)
        with contextlib.suppress(Exception):
            self._flush_received()
        with contextlib.suppress(Exception):
            forget(worker.app.taskplane.storage, worker.hostname)

    # -- metrics of the main process ---------------------------------------------------------------

    def _on_received(self, sender: Any = None, request: Any = None, **kwargs: Any) -> None:
        """Count a received message (in memory: flushed to Redis every second, not one write per task)."""
        if request is None or getattr(sender, "app", None) is not self._worker.app:
            return
        queue = (request.delivery_info or {}).get("routing_key") or ""
        with self._received_lock:
            self._received.count("celery_task_received_total", request.name, self._worker.hostname or "", queue)

    def _flush_received(self) -> None:
        with self._received_lock:
            pending, self._received = self._received, MetricChanges(self._worker.hostname or "")
        try:
            self._worker.app.taskplane.task_metrics.write(pending)
        except Exception:
            with self._received_lock:  # keep the counts for the next flush
                self._received.merge(pending)
            raise

    # -- periodic jobs -----------------------------------------------------------------------------

    def _renew_leases(self) -> None:
        """Push the lease of every delivery this worker holds to now (kombu restores expired ones)."""
        tags = [request.message.delivery_tag for request in tuple(state.reserved_requests) if request.message]
        if not tags:
            return
        storage = self._worker.app.taskplane.storage
        now = time.time()
        # XX: only renew deliveries still in flight; an acked or restored one must not come back.
        storage.client.zadd(storage.keys.unacked_index(), {tag: now for tag in tags}, xx=True)

    def _heartbeat(self) -> None:
        worker = self._worker
        # The queues chosen with -Q (known before the consumer exists, so the first beat has them too).
        chosen = list(worker.app.amqp.queues.consume_from or worker.app.amqp.queues)
        topology = worker.app.taskplane.topology
        queues = [spec.name for spec in topology.ordered([name for name in chosen if name in topology.names()])]
        beat(
            worker.app.taskplane.storage,
            worker.hostname,
            {
                "pid": os.getpid(),
                "queues": ",".join(queues),
                "concurrency": worker.concurrency,
                "active": len(state.active_requests),
                "processed": sum(state.total_count.values()),
                "started_at": self._started_at,
            },
        )

    def _terminate_cancelled(self) -> None:
        active = {request.id: request for request in tuple(state.active_requests)}
        if not active:
            return
        tp = self._worker.app.taskplane
        for task_id in tp.cancellations.due_for_termination(list(active)):
            request = active[task_id]
            log.warning("terminating cancelled task %s[%s] after its grace period", request.name, task_id)
            request.terminate(self._worker.pool, signal="SIGTERM")
            queue = (request.delivery_info or {}).get("routing_key") or tp.queue_for(request.name)
            tp.records.write(task_id, request.name, queue, "cancelled", finished_ms=now_ms(), reason="terminated")
            revoked = tp.task_metrics.changes(self._worker.hostname).count(
                "celery_task_revoked_total", request.name, self._worker.hostname or "", queue
            )
            tp.task_metrics.write(revoked)

    # -- bounded warm shutdown ---------------------------------------------------------------------

    def _on_shutting_down(self, sig: Any = None, how: str = "", exitcode: Any = None, **kwargs: Any) -> None:
        if how != "Warm" or self._shutdown_watch is not None:
            return
        timeout = self._worker.app.taskplane.settings.shutdown_timeout
        self._shutdown_watch = threading.Thread(
            target=self._bound_shutdown, args=(timeout,), name="taskplane-shutdown-bound", daemon=True
        )
        self._shutdown_watch.start()

    def _bound_shutdown(self, timeout: float) -> None:
        """After ``timeout`` s of draining, switch to a cold shutdown: unfinished work returns to its queue."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not state.active_requests:
                return
            time.sleep(0.1)
        if state.active_requests:
            log.warning(
                "shutdown timeout (%.0fs) reached with %d task(s) running: returning them to their queues",
                timeout,
                len(state.active_requests),
            )
            os.kill(os.getpid(), signal.SIGQUIT)
