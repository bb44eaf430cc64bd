"""Cluster-wide rate limits: a task over its limit goes back to wait for its slot, never holding a worker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery.exceptions import Ignore

from taskplane.core.clock import now_ms
from taskplane.core.errors import ConfigurationError
from taskplane.core.policies import RateLimit
from taskplane.core.protocol import Header, Metric, PublishOption, TaskState
from taskplane.middleware.base import Middleware, Run
from taskplane.stores.bundle import Stores
from taskplane.stores.metrics import MetricChanges


class RateLimits(Middleware):
    """``rate_limit="30/m"`` or ``RateLimit(...)``: one GCRA bucket in Redis shared by every worker.

    A delivery reserves the next start slot in the start write (``run_start.lua``, after the cancel
    check, before the delivery is counted); if the slot lies ahead, the task is re-published to the
    delayed store for that long (marked with the attempt whose slot it holds) and this delivery ends.
    """

    options = ("rate_limit",)

    def __init__(self, stores: Stores) -> None:
        self._stores = stores

    def task_options(self, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """``taskplane_rate_limit``: the limit as a :class:`RateLimit`.

        Raises:
            ConfigurationError: neither a rate string nor a RateLimit.
        """
        rate = options.get("rate_limit")
        if isinstance(rate, str):
            rate = RateLimit(rate)
        elif rate is not None and not isinstance(rate, RateLimit):
            raise ConfigurationError(f"rate_limit={rate!r}: give a rate like '30/m' or a RateLimit(...)")
        return {"taskplane_rate_limit": rate}

    def before_run(self, run: Run) -> None:
        """Ask the start write to reserve a start slot (once per attempt)."""
        limit: RateLimit | None = getattr(run.task, "taskplane_rate_limit", None)
        if limit is None or str(run.headers.get(Header.SLOT)) == str(run.attempt):
            return
        run.slot = self._stores.rate_limits.request(run.queue, run.name, limit, limit.bucket(run.args, run.kwargs))

    def after_start(self, run: Run) -> None:
        """Put the task back to wait for its slot if the start write found it ahead."""
        if run.verdict != "wait":
            return
        self._stores.records.write(
            run.task_id,
            run.name,
            run.queue,
            TaskState.SCHEDULED,
            batch=run.batch,
            eta_ms=now_ms() + int(run.wait * 1000),
            waiting_for="rate_limit",
        )
        self._stores.metrics.write(MetricChanges(run.worker).count(Metric.RATE_LIMITED, run.name), run.batch.pipe)
        run.flush()  # the record says "scheduled" before the message can be seen again
        signature = run.task.signature_from_request(
            run.task.request,
            run.args,
            run.kwargs,
            countdown=run.wait,
            queue=run.queue,
            headers={**run.headers, Header.SLOT.value: str(run.attempt)},
        )
        signature.apply_async(**{PublishOption.REPUBLISH.value: True})
        raise Ignore()
