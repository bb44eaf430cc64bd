"""Exceptions raised by taskplane. Every one carries a one-line, user-facing message."""

from __future__ import annotations


class TaskplaneError(Exception):
    """Base class of every error taskplane raises on purpose."""


class ConfigurationError(TaskplaneError):
    """A setting or a task option has a value taskplane cannot use."""


class RedisUnavailableError(TaskplaneError):
    """The Redis server cannot be reached."""


class PayloadTooLargeError(TaskplaneError):
    """A task message is larger than the configured limit."""


class UnknownTaskError(TaskplaneError):
    """No task of that name is registered with the app."""


class TaskArgumentsError(TaskplaneError):
    """The arguments do not fit the task function's signature."""


class NotFoundError(TaskplaneError):
    """The task, dead letter or other object does not exist."""


class EmbeddedServerError(TaskplaneError):
    """The embedded Redis/Valkey server could not be found, started or stopped."""


class InvalidRequestError(TaskplaneError):
    """A request that cannot be served as asked: a bad cursor, an empty or contradictory selection."""


class NotFinishedError(TaskplaneError):
    """The task has no result yet: it is still queued, scheduled or running."""


class IdempotencyConflictError(TaskplaneError):
    """An idempotency key was reused for a different call."""
