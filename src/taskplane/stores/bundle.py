"""Every store of one app, over one Redis connection opened on first use."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from taskplane.core.settings import Settings
from taskplane.core.topology import Topology
from taskplane.redis.storage import Storage
from taskplane.stores.api_keys import ApiKeyStore
from taskplane.stores.cancellations import CancellationStore
from taskplane.stores.dead_letters import DeadLetterCap, DeadLetterStore
from taskplane.stores.delayed import DelayedStore
from taskplane.stores.idempotency import IdempotencyKeys
from taskplane.stores.metrics import TaskMetrics
from taskplane.stores.queues import QueueLists
from taskplane.stores.rate_limits import RateLimiter
from taskplane.stores.records import RecordStore
from taskplane.stores.schedules import ScheduleStore
from taskplane.stores.unique_locks import UniqueLocks
from taskplane.stores.workers import WorkerStore


class Stores:
    """Builds each store the first time it is asked for; no I/O until then.

    ``redis_url`` is called once, when the connection is first needed (it may start the embedded server).
    """

    def __init__(
        self,
        redis_url: Callable[[], str],
        settings: Settings,
        topology: Topology,
        queues: Callable[[], list[str]] | None = None,
    ) -> None:
        """``queues`` names every queue a record may be in (default: the topology's)."""
        self._redis_url = redis_url
        self._settings = settings
        self._topology = topology
        self._queues = queues or topology.names

    @property
    def redis_url(self) -> str:
        """The Redis URL in use."""
        return self._redis_url()

    @cached_property
    def storage(self) -> Storage:
        """Redis client, key names and scripts."""
        return Storage.from_url(self._redis_url(), self._settings.key_prefix)

    @cached_property
    def records(self) -> RecordStore:
        """Task records."""
        return RecordStore(self.storage, self._settings.record_retention, self._queues)

    @cached_property
    def dead_letters(self) -> DeadLetterStore:
        """Dead-letter queues."""
        return DeadLetterStore(self.storage, self._topology.names(), self.dead_letter_cap)

    @property
    def dead_letter_cap(self) -> DeadLetterCap:
        """How much each dead-letter queue keeps (``dead_letter_cap`` letters, ``dead_letter_max_bytes``)."""
        return DeadLetterCap(self._settings.dead_letter_cap, self._settings.dead_letter_max_bytes)

    @cached_property
    def delayed(self) -> DelayedStore:
        """Broker-side delayed store."""
        return DelayedStore(self.storage)

    @cached_property
    def cancellations(self) -> CancellationStore:
        """Cancellation markers."""
        return CancellationStore(self.storage, self._settings.record_retention)

    @cached_property
    def idempotency(self) -> IdempotencyKeys:
        """Idempotency keys of enqueue calls."""
        return IdempotencyKeys(self._settings.record_retention)

    @cached_property
    def unique_locks(self) -> UniqueLocks:
        """Uniqueness locks."""
        return UniqueLocks(self.storage)

    @cached_property
    def rate_limits(self) -> RateLimiter:
        """Cluster-wide rate limiter."""
        return RateLimiter(self.storage)

    @cached_property
    def metrics(self) -> TaskMetrics:
        """Cluster-wide task counters and histograms."""
        return TaskMetrics(self.storage)

    @cached_property
    def workers(self) -> WorkerStore:
        """Worker heartbeats."""
        return WorkerStore(self.storage)

    @cached_property
    def schedules(self) -> ScheduleStore:
        """Schedule state and the scheduler lease."""
        return ScheduleStore(self.storage)

    @cached_property
    def api_keys(self) -> ApiKeyStore:
        """API keys of the HTTP API."""
        return ApiKeyStore(self.storage)

    @cached_property
    def queues(self) -> QueueLists:
        """kombu's queue lists."""
        return QueueLists(self.storage)
