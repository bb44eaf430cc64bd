"""The queue lists: one Redis list per queue and message priority (named by :meth:`Keys.queue`)."""

from __future__ import annotations

from typing import Any

from taskplane.redis.keys import PRIORITY_STEPS, Keys
from taskplane.redis.publish_ops import queue_items
from taskplane.redis.storage import Storage

#: Most messages moved per step by :meth:`QueueLists.adopt_unprefixed`.
ADOPT_BATCH = 1000


def _in_slot_of(key: str, suffix: str) -> str:
    """A key name in ``key``'s cluster slot: ``key`` and ``suffix`` if it holds a hash tag, else ``{key}``
    and ``suffix``."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return f"{key}{suffix}" if start >= 0 and end > start + 1 else f"{{{key}}}{suffix}"


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
        under the queue's hash tag, :meth:`Keys.queue`). They go behind what the queue's list holds, in their
        order. Returns how many moved.

        A source list is in another cluster slot than its queue's, so each batch is two steps (copied into the
        queue's list with its bells, then trimmed from the source), under a lock in the source's slot: a
        failure between can run a message twice, never lose it. Producers push at the source's other end."""
        keys = self._storage.keys
        moves = [
            (source, keys.queue(name, priority), keys.bell(name))
            for name in names
            for priority in PRIORITY_STEPS
            for source in sorted({Keys("").kombu_list(name, priority), keys.kombu_list(name, priority)})
            if source != keys.queue(name, priority)
        ]
        pipe = self._storage.client.pipeline(transaction=False)  # one round trip when there is nothing to move
        for source, _, _ in moves:
            pipe.exists(source)
        found = [move for move, there in zip(moves, pipe.execute(), strict=True) if there]
        if not found:
            return 0
        binary = self._storage.binary()  # items are moved as the bytes they are
        try:
            return sum(self._adopt(binary, *move) for move in found)
        finally:
            binary.close()

    def _adopt(self, binary: Any, source: str, target: str, bell: str) -> int:
        """Move every message of ``source`` behind ``target``'s, the oldest first (see :meth:`adopt_unprefixed`);
        0 if another worker holds the source's lock (it moves them)."""
        lock = binary.lock(_in_slot_of(source, ":taskplane-adopting"), timeout=60, blocking=False)
        if not lock.acquire():
            return 0
        moved = 0
        try:
            while batch := binary.lrange(source, -ADOPT_BATCH, -1):  # the oldest, newest of them first
                pipe = binary.pipeline(transaction=True)
                queue_items(pipe, target, bell, list(reversed(batch)))
                pipe.execute()
                binary.ltrim(source, 0, -len(batch) - 1)
                moved += len(batch)
        finally:
            lock.release()
        return moved

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
