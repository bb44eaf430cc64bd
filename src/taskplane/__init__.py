"""taskplane: a production job platform on Celery + Redis."""

from taskplane.app import Taskplane
from taskplane.context import is_cancelled, progress
from taskplane.deadletter import DeadFilter, DeadLetter
from taskplane.errors import (
    ConfigurationError,
    EmbeddedServerError,
    NotFoundError,
    PayloadTooLargeError,
    RedisUnavailableError,
    TaskArgumentsError,
    TaskplaneError,
    UnknownTaskError,
)
from taskplane.handle import TaskFailedError, TaskHandle
from taskplane.policies import RateLimit, Retry
from taskplane.records import TaskRecord
from taskplane.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "DeadFilter",
    "DeadLetter",
    "EmbeddedServerError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimit",
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
