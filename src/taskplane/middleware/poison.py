"""The poison-message cap: a delivery that keeps killing the process running it is dead-lettered."""

from __future__ import annotations

from celery.exceptions import Reject

from taskplane.core.protocol import DeadReason
from taskplane.middleware.base import Middleware, Run
from taskplane.middleware.failure import FailurePath
from taskplane.stores.bundle import Stores


class PoisonCap(Middleware):
    """Counts the deliveries of each attempt; past ``max_deliveries`` the task is dead-lettered as poison."""

    def __init__(self, stores: Stores, failure: FailurePath, max_deliveries: int) -> None:
        self._stores = stores
        self._failure = failure
        self._max_deliveries = max_deliveries

    def after_start(self, run: Run) -> None:
        """Refuse a delivery whose attempt was delivered too often without finishing (the start write
        counted the deliveries)."""
        if run.deliveries <= self._max_deliveries:
            return
        self._failure.bury_run(
            DeadReason.POISON,
            run,
            message=f"delivered {run.deliveries - 1} times without finishing (the process running it died)",
        )
        raise Reject(f"poison message: delivered {run.deliveries - 1} times", requeue=False)
