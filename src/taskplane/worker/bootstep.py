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

from taskplane.records import now_ms
from taskplane.worker.heartbeat import HEARTBEAT_INTERVAL, beat, forget
from taskplane.worker.periodic import Periodic

log = logging.getLogger("taskplane.worker")


class TaskplaneWorkerStep(bootsteps.StartStopStep):
    """Starts taskplane's maintenance threads in every worker and bounds its warm shutdown."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **options: Any) -> None:
        super().__init__(worker, **options)
        self._threads: list[Periodic] = []
        self._worker = worker
        self._shutdown_watch: threading.Thread | None = None

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
        ]
        for thread in self._threads:
            thread.start()
        signals.worker_shutting_down.connect(self._on_shutting_down, weak=False)

    def shutdown(self, worker: Any) -> None:
        """Stop the threads once the worker is done (leases are renewed until the very end)."""
        for thread in self._threads:
            thread.stop()
        with contextlib.suppress(Exception):
            forget(worker.app.taskplane.storage, worker.hostname)

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
