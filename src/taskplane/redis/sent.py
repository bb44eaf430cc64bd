"""A batch written without waiting for its replies: a task's final writes (see ``Batch.send``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.exceptions import ResponseError


class SentBatch:
    """Commands written to a pooled connection whose replies are still to be read: ``count`` of them,
    which ``resend`` sends again (waiting for the replies) and whose replies ``replied`` checks."""

    def __init__(
        self,
        connection: Any,
        pool: Any,
        count: int,
        resend: Callable[[], list[Any]],
        replied: Callable[[list[Any]], list[Any]],
    ) -> None:
        self._connection: Any = connection
        self._pool = pool
        self._count = count
        self._resend = resend
        self._replied = replied

    def settle(self) -> list[Any]:
        """Read the replies (they are usually there already) and hand the connection back to its pool;
        returns them as the server sent them (redis-py's reply conversions are not applied). When the
        connection broke before every reply came, whether the writes landed is unknown: the whole batch is
        sent again (its writes are idempotent), also when this is called again after such a resend failed.

        Raises:
            redis.RedisError: the first command that failed, or Redis unreachable for the resend.
        """
        connection, pool = self._connection, self._pool
        if connection is None:
            return self._resend()
        self._connection = None
        replies: list[Any] = []
        try:
            for _ in range(self._count):
                try:
                    replies.append(connection.read_response())
                except ResponseError as error:
                    replies.append(error)
        except BaseException:
            connection.disconnect()
            pool.release(connection)
            return self._resend()
        pool.release(connection)
        return self._replied(replies)
