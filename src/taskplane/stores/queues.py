"""The queue lists kombu owns: one Redis list per queue and one per message-priority step."""

from __future__ import annotations

from kombu.transport.redis import Channel as RedisChannel

from taskplane.redis.storage import Storage


def priority_lists(queue: str) -> list[str]:
    """The Redis lists kombu keeps for ``queue``: the queue itself and one per message-priority step."""
    steps = [step for step in RedisChannel.priority_steps if step]
    return [queue, *(f"{queue}{RedisChannel.sep}{step}" for step in steps)]


def queue_of_list(list_name: str) -> str:
    """The queue a kombu list belongs to (its priority step suffix removed)."""
    return list_name.rsplit(RedisChannel.sep, 1)[0]


class QueueLists:
    """Reads the length of kombu's queue lists."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def lengths(self, names: list[str]) -> dict[str, int]:
        """Messages ready in each queue, counting every priority sub-list (one pipeline)."""
        pipe = self._storage.client.pipeline(transaction=False)
        lists = {name: priority_lists(name) for name in names}
        for name in names:
            for key in lists[name]:
                pipe.llen(key)
        replies = iter(pipe.execute())
        return {name: sum(int(next(replies)) for _ in lists[name]) for name in names}
