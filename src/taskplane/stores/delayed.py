"""The broker-side delayed store: countdowns, ETAs, retries and rate-limit waits wait here, not in workers."""

from __future__ import annotations

from taskplane.redis.keys import BELL_CAP
from taskplane.redis.storage import Storage

MOVE_BATCH = 500


class DelayedStore:
    """One sorted set per queue, scored by due time (server clock); a mover returns due messages."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def move_due(self, queues: list[str]) -> int:
        """Move the due messages of ``queues`` to the front of their queues: one script call per queue
        (each atomic, touching that queue's keys only), all in one round trip. Returns how many moved."""
        if not queues:
            return 0
        names = self._storage.keys
        batch = self._storage.batch()
        for queue in queues:
            keys = [names.delayed(queue), names.bell(queue), *names.queue_lists(queue)]
            batch.script("delayed_move", keys, [MOVE_BATCH, BELL_CAP])
        return sum(int(moved) for moved in batch.execute())

    def counts(self, queues: list[str]) -> dict[str, int]:
        """Number of delayed messages per queue."""
        pipe = self._storage.client.pipeline(transaction=False)
        for queue in queues:
            pipe.zcard(self._storage.keys.delayed(queue))
        return dict(zip(queues, (int(n) for n in pipe.execute()), strict=True))
