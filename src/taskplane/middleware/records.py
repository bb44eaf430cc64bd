"""Task records through the lifecycle: queued or scheduled at publish, started, succeeded, cancelled."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from celery.exceptions import Ignore

from taskplane.core.clock import compact_json, now_ms
from taskplane.core.protocol import Header, TaskState
from taskplane.middleware.base import Middleware, Publish, Run, WorkerContext
from taskplane.stores.bundle import Stores
from taskplane.stores.record_model import delivery_attempt
from taskplane.stores.records import fetched_start

log = logging.getLogger("taskplane.worker")

#: How often a worker drops index entries of expired records.
TRIM_INTERVAL = 60.0


class Records(Middleware):
    """Writes the durable record of every task (retries, rate waits and dead letters write their own)."""

    def __init__(
        self, stores: Stores, task_names: Callable[[], list[str]], queue_names: Callable[[], list[str]]
    ) -> None:
        self._stores = stores
        self._task_names = task_names
        self._queue_names = queue_names

    def before_publish(self, publish: Publish) -> None:
        """A new task is recorded as queued, or scheduled when it has an ETA; a requeued dead letter is
        queued again with its attempts, delivery count and error reset. Written by the transport in the
        publish script that queues the message: both or neither."""
        fields: dict[str, Any]
        if publish.requeued:
            fields = {"deliveries": 0, "requeued_ms": now_ms(), "reason": "", "error_type": "", "error_message": ""}
        elif publish.fresh:
            fields = {
                "args": compact_json(publish.args)[0],
                "kwargs": compact_json(publish.kwargs)[0],
                "eta_ms": publish.eta_ms,
            }
        else:
            return
        state = TaskState.SCHEDULED if publish.eta_ms else TaskState.QUEUED
        self._stores.records.write(
            publish.task_id, publish.name, publish.queue, state, batch=publish.batch, attempts=0, retries=0, **fields
        )

    def before_publish_many(self, publishes: Sequence[Publish]) -> None:
        """New tasks of one name, queue and ETA are recorded in one operation of the publish script."""
        first = publishes[0] if publishes else None
        if first is None or any(
            not p.fresh or p.requeued or (p.name, p.queue, p.eta_ms) != (first.name, first.queue, first.eta_ms)
            for p in publishes
        ):
            super().before_publish_many(publishes)
            return
        self._stores.records.write_many(
            first.batch,
            first.name,
            first.queue,
            TaskState.SCHEDULED if first.eta_ms else TaskState.QUEUED,
            [(p.task_id, {"args": compact_json(p.args)[0], "kwargs": compact_json(p.kwargs)[0]}) for p in publishes],
            eta_ms=first.eta_ms,
            attempts=0,
            retries=0,
        )

    def before_run(self, run: Run) -> None:
        """Queue the start write: unless the task was cancelled or must wait for its rate-limit slot
        (``run.slot``, set by an earlier hook), the record says started, with the attempt, the worker and
        the delivery count (``run.verdict`` and ``run.deliveries`` or ``run.wait`` once sent). Nothing is
        queued when the worker's fetch started the task already (the message says so): the verdict is
        taken from there."""
        fetched = fetched_start(run.headers.get(Header.STARTED)) if run.slot is None else None
        if fetched is not None:
            run.verdict, run.deliveries = fetched
            return

        def replied(verdict: str, value: int) -> None:
            run.verdict = verdict
            if verdict == "wait":
                run.wait = value / 1000
            else:
                run.deliveries = value

        self._stores.records.start(
            run.batch,
            run.task_id,
            run.name,
            run.queue,
            delivery_attempt(run.attempt, run.headers),
            replied,
            slot=run.slot,
            started_ms=int(run.started * 1000),
            attempts=run.attempt + 1,
            retries=run.attempt,
            worker=run.worker,
        )

    def after_start(self, run: Run) -> None:
        """A delivery of a task that already succeeded (its acknowledgement was lost with its worker, or its
        lease ran out) is acknowledged without running again."""
        if run.verdict == "done":
            log.warning("task %s[%s] already succeeded: acknowledged without running again", run.name, run.task_id)
            raise Ignore()

    def after_run(self, run: Run) -> None:
        """The record says succeeded (with the result), cancelled before it started, or cancelled with
        the reason ``stopped`` (its body returned after ``is_cancelled()`` said so; what it returned kept)."""
        records = self._stores.records
        if run.outcome == TaskState.CANCELLED and not run.cancel_seen:
            records.write(run.task_id, run.name, run.queue, TaskState.CANCELLED, batch=run.batch, finished_ms=now_ms())
            return
        text, truncated = compact_json(run.result)
        records.write(
            run.task_id,
            run.name,
            run.queue,
            TaskState(run.outcome or TaskState.SUCCEEDED),
            batch=run.batch,
            finished_ms=now_ms(),
            runtime=round(time.time() - run.started, 6),
            result=text,
            result_truncated=1 if truncated else None,  # only when it was: 20 bytes fewer per record
            reason="stopped" if run.cancel_seen else None,
        )

    def on_worker_start(self, worker: WorkerContext) -> None:
        """Trim index entries of expired records every minute."""
        worker.add_periodic(
            "record-trim", TRIM_INTERVAL, lambda: self._stores.records.trim(self._task_names(), self._queue_names())
        )
