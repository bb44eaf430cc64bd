"""The middleware every app gets, in the order its hooks run."""

from __future__ import annotations

from collections.abc import Callable

from taskplane.core.settings import Settings
from taskplane.middleware.base import Middleware
from taskplane.middleware.cancellation import Cancellation
from taskplane.middleware.failure import FailurePath
from taskplane.middleware.metrics import Metrics
from taskplane.middleware.poison import PoisonCap
from taskplane.middleware.progress import Progress
from taskplane.middleware.rate_limit import RateLimits
from taskplane.middleware.records import Records
from taskplane.middleware.retries import Retries
from taskplane.middleware.time_limits import TimeLimits
from taskplane.middleware.uniqueness import Uniqueness
from taskplane.stores.bundle import Stores


def default_middleware(
    stores: Stores,
    failure: FailurePath,
    settings: Settings,
    task_names: Callable[[], list[str]],
    queue_names: Callable[[], list[str]],
) -> list[Middleware]:
    """The task lifecycle: what stops a delivery comes first (cancelled, over its rate, poison), progress
    is written before the final record, and retries decide last, once every other failure hook ran."""
    return [
        Cancellation(stores, failure),
        RateLimits(stores),  # before Records: its before_run names the slot Records' start write reserves
        PoisonCap(stores, failure, settings.max_deliveries),
        Uniqueness(stores),
        Progress(stores),
        Records(stores, task_names, queue_names),
        Metrics(stores),
        TimeLimits(failure, settings.soft_time_limit),
        Retries(stores, failure),
    ]
