"""taskplane: a production job platform on Celery + Redis."""

from taskplane.app import Taskplane
from taskplane.client.handle import TaskFailedError, TaskHandle
from taskplane.client.producer import Call
from taskplane.core.errors import (
    ConfigurationError,
    EmbeddedServerError,
    IdempotencyConflictError,
    InvalidRequestError,
    NotFinishedError,
    NotFoundError,
    PayloadTooLargeError,
    RedisUnavailableError,
    TaskArgumentsError,
    TaskplaneError,
    UnknownTaskError,
)
from taskplane.core.policies import RateLimit, Retry
from taskplane.core.protocol import DeadReason, TaskState
from taskplane.core.settings import Settings
from taskplane.middleware.cancellation import is_cancelled
from taskplane.middleware.progress import progress
from taskplane.redis.embedded import EmbeddedServer
from taskplane.stores.dead_letters import DeadFilter, DeadLetter
from taskplane.stores.records import RecordPage, TaskRecord

__version__ = "0.1.0"

__all__ = [
    "Call",
    "ConfigurationError",
    "DeadFilter",
    "DeadLetter",
    "DeadReason",
    "EmbeddedServer",
    "EmbeddedServerError",
    "IdempotencyConflictError",
    "InvalidRequestError",
    "NotFinishedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimit",
    "RecordPage",
    "RedisUnavailableError",
    "Retry",
    "Settings",
    "TaskArgumentsError",
    "TaskFailedError",
    "TaskHandle",
    "TaskRecord",
    "TaskState",
    "Taskplane",
    "TaskplaneError",
    "UnknownTaskError",
    "__version__",
    "is_cancelled",
    "progress",
]
