"""Redis client construction with the timeouts and health checks every taskplane process uses."""

from __future__ import annotations

from urllib.parse import urlparse

import kombu.exceptions
import redis

from taskplane.errors import RedisUnavailableError

SOCKET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 3.0
HEALTH_CHECK_INTERVAL = 25

#: What redis-py, kombu and the OS raise when the server cannot be reached.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    kombu.exceptions.OperationalError,
    ConnectionError,
)


def connect(url: str) -> redis.Redis:
    """A client for ``url`` with bounded socket timeouts, keepalive and health checks (no I/O yet)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_INTERVAL,
        decode_responses=True,
    )


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs."""
    parsed = urlparse(url)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return url


def unavailable(url: str, exc: BaseException) -> RedisUnavailableError:
    """A one-line error naming the server that could not be reached."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return RedisUnavailableError(f"Redis at {safe_url(url)} is unreachable: {reason}")
