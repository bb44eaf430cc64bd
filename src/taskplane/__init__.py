"""taskplane: a production job platform on Celery + Redis."""

from taskplane.app import Taskplane
from taskplane.middleware.execution import is_cancelled, progress
from taskplane.stores.dead_letters import DeadFilter, DeadLetter
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
from taskplane.client.handle import TaskFailedError, TaskHandle
from taskplane.core.policies import RateLimit, Retry
from taskplane.stores.records import RecordPage, TaskRecord
from taskplane.core.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "DeadFilter",
    "DeadLetter",
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
    "Taskplane",
    "TaskplaneError",
    "UnknownTaskError",
    "__version__",
    "is_cancelled",
    "progress",
]
