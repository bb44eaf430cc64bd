"""The queue lists kombu owns: one Redis list per queue and one per message-priority step."""

from __future__ import annotations

from kombu.transport.redis import Channel as RedisChannel

from taskplane.redis.storage import Storage

#: Message priorities 0 (first) to 9 (last), each its own list inside a queue: Celery's ``priority=`` orders
#: messages within one queue as on a plain Celery Redis setup with ``priority_steps=list(range(10))``.
PRIORITY_STEPS = tuple(range(10))
#: What separates a queue's name from the priority in the name of its priority's list (kombu's).
PRIORITY_SEP: str = RedisChannel.sep


def priority_lists(queue: str) -> list[str]:
    """The Redis lists kombu keeps for ``queue``: the queue itself and one per message-priority step."""
    return [queue, *(f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS if step)]


def queue_of_list(list_name: str) -> str:
    """The queue a kombu list belongs to (its priority step suffix removed)."""
    return list_name.rsplit(PRIORITY_SEP, 1)[0]


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
