"""The queue lists: one Redis list per queue and message priority (named by :meth:`Keys.queue`)."""

from __future__ import annotations

from taskplane.redis.keys import BELL_CAP, PRIORITY_STEPS, Keys
from taskplane.redis.storage import Storage

#: Most messages moved per script call by :meth:`QueueLists.adopt_unprefixed`.
ADOPT_BATCH = 1000


class QueueLists:
    """Reads the length of the queue lists; adopts lists named without the prefix."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def lengths(self, names: list[str]) -> dict[str, int]:
        """Messages ready in each queue, counting every priority sub-list (one pipeline)."""
        pipe = self._storage.client.pipeline(transaction=False)
        lists = {name: self._storage.keys.queue_lists(name) for name in names}
        for name in names:
            for key in lists[name]:
                pipe.llen(key)
        replies = iter(pipe.execute())
        return {name: sum(int(next(replies)) for _ in lists[name]) for name in names}

    def in_flight(self, names: list[str]) -> dict[str, int]:
        """Deliveries taken by workers and not yet acknowledged, per queue (one HLEN each, in a pipeline)."""
        pipe = self._storage.client.pipeline(transaction=False)
        for name in names:
            pipe.hlen(self._storage.keys.unacked(name))
        return {name: int(count) for name, count in zip(names, pipe.execute(), strict=True)}

    def adopt_unprefixed(self, names: list[str]) -> int:
        """Move messages from lists taskplane does not read into the lists of the same queues and priorities:
        lists named without the key prefix (by a plain Celery client without ``global_keyprefix``) and the
        lists kombu names for priorities above 0 (by a plain Celery client with it: taskplane keeps those
        under the queue's hash tag, :meth:`Keys.queue`). Returns how many moved."""
        keys = self._storage.keys
        total = 0
        for name in names:  # one queue per script call (its sources are in other slots: not on a cluster yet)
            script_keys: list[str] = []
            for priority in PRIORITY_STEPS:
                sources = {Keys("").kombu_list(name, priority), keys.kombu_list(name, priority)}
                for source in sorted(sources - {keys.queue(name, priority)}):
                    script_keys += [source, keys.queue(name, priority), keys.bell(name)]
            while script_keys:
                moved = int(self._storage.scripts.run("queue_adopt", keys=script_keys, args=[ADOPT_BATCH, BELL_CAP]))
                total += moved
                if moved < ADOPT_BATCH:
                    break
        return total

    def take_for_purge(self, name: str, limit: int = ADOPT_BATCH) -> list[str]:
        """Move up to ``limit`` messages of queue ``name`` (ready, then delayed) to its purge list, and return
        what the purge list holds (these and any a purge cut short left), raw, up to ``limit``."""
        keys = self._storage.keys
        script_keys = [keys.purging(name), keys.delayed(name), *keys.queue_lists(name)]
        self._storage.scripts.run("queue_purge", keys=script_keys, args=[limit])
        raw = self._storage.client.lrange(keys.purging(name), -limit, -1)
        return [item.decode() if isinstance(item, bytes) else str(item) for item in raw]

    def forget_purged(self, name: str, count: int) -> None:
        """Drop the ``count`` oldest messages of the purge list (their records are marked)."""
        self._storage.client.ltrim(self._storage.keys.purging(name), 0, -count - 1)
