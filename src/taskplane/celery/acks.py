"""Acknowledgements of taskplane's channel, kept per queue until they ride on the next fetch
(:mod:`taskplane.celery.fetch`) or are sent on their own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taskplane.redis.keys import Keys


class PendingAcks:
    """Finished deliveries (queue, tag) not yet taken out of flight: those kept for the next fetch, and those
    the fetch under way carries (back to kept if the server refused that fetch whole)."""

    def __init__(self) -> None:
        self.kept: list[tuple[str, str]] = []
        self.sent: list[tuple[str, str]] = []

    def add(self, queue: str, tag: str) -> None:
        """Keep the acknowledgement of ``tag``, taken from ``queue``."""
        self.kept.append((queue, tag))

    def outside(self, queues: list[str]) -> bool:
        """True if a kept acknowledgement is of a queue not in ``queues`` (it cannot ride on their fetch)."""
        return any(queue not in queues for queue, _ in self.kept)

    def ride(self, queues: list[str]) -> list[Any]:
        """Hand the kept acknowledgements to a fetch of ``queues`` (every kept one is of them): ``fetch.lua``'s
        arguments for them, per queue in order its name, a count and the tags."""
        self.sent, self.kept = self.kept, []
        args: list[Any] = []
        for queue, tags in _by_queue(self.sent, queues).items():
            args += [queue, len(tags), *tags]
        return args

    def landed(self) -> None:
        """The fetch that carried them ran (or its reply was lost: their leases return what it did not do)."""
        self.sent = []

    def refused(self) -> None:
        """The server refused the fetch that carried them whole: they are kept for the next try."""
        self.kept, self.sent = self.sent + self.kept, []

    def flush(self, client: Any, keys: Keys, errors: tuple[type[BaseException], ...]) -> None:
        """Send the kept acknowledgements now (two commands per queue in a pipeline, not atomic: a lease entry
        whose message is gone is dropped by the restore). A server that is full takes them: deleting is
        allowed at ``maxmemory``.

        Raises:
            Any of ``errors``: sending failed (they are kept for the next try).
        """
        acks, self.kept = self.kept, []
        if not acks:
            return
        try:
            pipe = client.pipeline(transaction=False)
            for queue, tags in _by_queue(acks).items():
                pipe.hdel(keys.unacked(queue), *tags).zrem(keys.unacked_index(queue), *tags)
            pipe.execute()
        except errors:
            self.kept = acks + self.kept
            raise


def _by_queue(acks: list[tuple[str, str]], queues: Sequence[str] = ()) -> dict[str, list[str]]:
    """The tags of ``acks`` by queue: every one of ``queues`` first, in their order (empty if none), then any other."""
    grouped: dict[str, list[str]] = {queue: [] for queue in queues}
    for queue, tag in acks:
        grouped.setdefault(queue, []).append(tag)
    return grouped
