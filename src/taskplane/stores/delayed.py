"""The broker-side delayed store: countdowns, ETAs, retries and rate-limit waits wait here, not in workers."""

from __future__ import annotations

from taskplane.redis.keys import BELL_CAP, PRIORITY_SEP
from taskplane.redis.storage import Storage

MOVE_BATCH = 500


class DelayedStore:
    """One sorted set per queue, scored by due time (server clock); a mover returns due messages."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def move_due(self, queues: list[str]) -> int:
        """Move every due message of ``queues`` to the front of its queue, atomically. Returns how many."""
        names = self._storage.keys
        keys: list[str] = []
        for queue in queues:
            keys.extend((names.delayed(queue), names.queue(queue), names.bell(queue)))
        if not keys:
            return 0
        return int(self._storage.scripts.run("delayed_move", keys=keys, args=[MOVE_BATCH, BELL_CAP, PRIORITY_SEP]))

    def counts(self, queues: list[str]) -> dict[str, int]:
        """Number of delayed messages per queue."""
        pipe = self._storage.client.pipeline(transaction=False)
        for queue in queues:
            pipe.zcard(self._storage.keys.delayed(queue))
        return dict(zip(queues, (int(n) for n in pipe.execute()), strict=True))
