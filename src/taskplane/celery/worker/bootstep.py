"""The worker's maintenance bootstep (main process): delayed mover, lease renewal, heartbeats, the
middleware's worker hooks (cancellation enforcement, record trimming, received counts), and the bound on
warm shutdown."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import bootsteps, signals
from celery.worker import state

from taskplane.celery.app import TaskplaneCelery
from taskplane.celery.worker import drain
from taskplane.celery.worker.periodic import Periodic
from taskplane.middleware.base import WorkerContext
from taskplane.observability import logging as log_format_module
from taskplane.stores.workers import HEARTBEAT_INTERVAL

log = logging.getLogger("taskplane.worker")


class TaskplaneWorkerStep(bootsteps.StartStopStep):
    """Starts taskplane's maintenance threads in every worker and bounds its warm shutdown."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **options: Any) -> None:
        super().__init__(worker, **options)
        self._threads: list[Periodic] = []
        self._worker = worker
        self._app: TaskplaneCelery = worker.app
        self._app.worker_name = worker.hostname
        self._shutdown_watch: threading.Thread | None = None
        self._finished = False
        self._bounded = False
        # Sent after the pool has drained (blueprint steps are stopped before the pool is): leases are
        # renewed and counts kept until the very end. Connected here, so that a worker whose start
        # failed still records its exit code and cleans up.
        signals.worker_shutdown.connect(self._on_worker_shutdown, weak=False)
        self._context = WorkerContext(
            hostname=worker.hostname or "", app=worker.app, pool=lambda: worker.pool, add_periodic=self._add_periodic
        )
        # Celery has set up its log handlers by now; pool children are forked later and set up again.
        log_format = self._app.settings.log_format
        log_format_module.configure(log_format)
        drain.share()  # before the pool forks: its processes inherit the flags

        signals.worker_process_init.connect(lambda **_: log_format_module.configure(log_format), weak=False)
        # A pool process reads the replies of its last task's final writes before it exits, and from then on
        # ends at once on SIGTERM (billiard's main process sends one to cut short a recycled process's exit).
        signals.worker_process_shutdown.connect(lambda **_: self._process_exits(), weak=False)
        # billiard sets its own SIGTERM handler after worker_process_init: take over at the first task.
        signals.task_prerun.connect(lambda **_: drain.install_in_pool_process(), weak=False)

    def _process_exits(self) -> None:
        drain.exiting()
        self._app.chain.settle()

    def _add_periodic(self, name: str, interval: float, action: Callable[[], object]) -> None:
        thread = Periodic(name, interval, action)
        self._threads.append(thread)
        thread.start()

    def start(self, worker: Any) -> None:
        """Start the maintenance threads and tell the middleware the worker started."""
        app = self._app
        settings = app.settings
        stores = app.stores
        self._started_at = time.time()
        topology = app.topology
        self._add_periodic("delayed-mover", settings.mover_interval, lambda: stores.delayed.move_due(topology.names()))
        self._add_periodic("lease-renewal", settings.lease_timeout / 3, self._renew_leases)
        self._add_periodic("heartbeat", HEARTBEAT_INTERVAL, self._heartbeat)
        app.chain.worker_started(self._context)
        try:  # messages queued under list names without the prefix (an older taskplane; a misconfigured client)
            adopted = stores.queues.adopt_unprefixed(topology.names())
            if adopted:
                log.warning("moved %d messages from queue lists named without the key prefix", adopted)
        except Exception as exc:
            log.warning("could not adopt queue lists named without the key prefix: %s", exc)
        try:  # items a worker set aside as malformed and died before dead-lettering
            app.failure.bury_quarantined(topology.names(), app.stores.storage.keys.queue_of)
        except Exception as exc:
            log.warning("could not dead-letter quarantined items: %s", exc)
        signals.worker_shutting_down.connect(self._on_shutting_down, weak=False)

    def terminate(self, worker: Any) -> None:
        """A cold shutdown (Celery sends no ``worker_shutdown`` then): clean up at once."""
        self._on_worker_shutdown(worker)

    def _on_worker_shutdown(self, sender: Any = None, **kwargs: Any) -> None:
        """Stop the threads once the worker is done, tell the middleware, and leave the worker list."""
        if sender is not self._worker or self._finished:
            return
        self._finished = True
        # A cold stop this step asked for (the shutdown bound ran out) is a planned stop, not a failure.
        self._app.worker_exit_code = 0 if self._bounded else getattr(sender, "exitcode", None)
        for thread in self._threads:
            thread.stop()
        signals.worker_shutdown.disconnect(self._on_worker_shutdown)
        signals.worker_shutting_down.disconnect(self._on_shutting_down)
        self._app.chain.worker_stopped(self._context)
        try:
            self._app.stores.workers.forget(self._worker.hostname)
        except Exception as exc:
            log.warning("could not remove worker %s from the worker list: %s", self._worker.hostname, exc)

    # -- periodic jobs -----------------------------------------------------------------------------

    def _renew_leases(self) -> None:
        """Push the lease of every delivery this worker holds to now (kombu restores expired ones)."""
        # Only deliveries of a live channel: after a reconnect the old channel's are not ours to keep.
        by_queue: dict[str, dict[str, float]] = {}
        now = time.time()
        for request in tuple(state.reserved_requests):
            message = request.message
            if message and not getattr(message.channel, "closed", True):
                queue = message.channel.qos.queue_of(message.delivery_tag)
                if queue is not None:
                    by_queue.setdefault(queue, {})[message.delivery_tag] = now
        if not by_queue:
            return
        storage = self._app.stores.storage
        pipe = storage.client.pipeline(transaction=False)
        for queue, tags in by_queue.items():
            # XX: only renew deliveries still in flight; an acked or restored one must not come back.
            pipe.zadd(storage.keys.unacked_index(queue), tags, xx=True)
        pipe.execute()

    def _heartbeat(self) -> None:
        worker = self._worker
        # The queues chosen with -Q (known before the consumer exists, so the first beat has them too).
        chosen = list(worker.app.amqp.queues.consume_from or worker.app.amqp.queues)
        topology = self._app.topology
        queues = [spec.name for spec in topology.ordered([name for name in chosen if name in topology.names()])]
        self._app.stores.workers.beat(
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

    def _on_shutting_down(self, sig: Any = None, how: str = "", exitcode: Any = None, **kwargs: Any) -> None:
        if how != "Warm":
            drain.terminating()
            return
        drain.draining()
        if self._shutdown_watch is not None:
            return
        timeout = self._app.settings.shutdown_timeout
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
        running = tuple(state.active_requests)
        if running:
            log.warning(
                "shutdown timeout (%.0fs) reached with %d task(s) running: returning them to their queues",
                timeout,
                len(running),
            )
            # The cold shutdown returns them; the channel's close marks their records queued again, without
            # counting the delivery (a graceful stop is not a crash: taskplane.celery.qos).
            drain.terminating()
            self._bounded = True
            os.kill(os.getpid(), signal.SIGQUIT)
