"""``tp.dead_letters``: find, show, requeue and purge dead letters (the CLI and the HTTP API call these)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from celery import Celery

from taskplane.core.errors import InvalidRequestError, NotFoundError
from taskplane.core.protocol import PublishOption
from taskplane.core.registry import TaskRegistry
from taskplane.core.topology import Topology
from taskplane.redis.publish_ops import queue_items
from taskplane.stores.bundle import Stores
from taskplane.stores.dead_letters import DeadFilter, DeadLetter
from taskplane.stores.requeue import Requeue


class DeadLetters:
    """The dead-letter queues of one app. Dead letters are made only by the failure path
    (:class:`taskplane.middleware.failure.FailurePath`); here they are read, requeued and purged."""

    def __init__(self, stores: Stores, celery: Celery, registry: TaskRegistry, topology: Topology) -> None:
        self._stores = stores
        self._celery = celery
        self._registry = registry
        self._topology = topology

    # -- reading ----------------------------------------------------------------------------------

    def find(self, where: DeadFilter | None = None, limit: int = 50, offset: int = 0) -> list[DeadLetter]:
        """Dead letters newest first, filtered, paged."""
        return self._stores.dead_letters.find(where or DeadFilter(), limit, offset)

    def get(self, letter_id: str, queue: str | None = None) -> DeadLetter | None:
        """The dead letter with this id (searched in every dead-letter queue unless one is named)."""
        return self._stores.dead_letters.get(letter_id, queue)

    def iterate(self, where: DeadFilter | None = None) -> Iterator[DeadLetter]:
        """Every matching dead letter, newest first."""
        return self._stores.dead_letters.iterate(where or DeadFilter())

    def count(self, where: DeadFilter | None = None) -> int:
        """How many dead letters match (a scan when filtered by task or reason)."""
        return self._stores.dead_letters.count(where or DeadFilter())

    def counts(self) -> dict[str, int]:
        """Number of dead letters per queue."""
        return self._stores.dead_letters.counts()

    def dropped(self, queue: str) -> int:
        """How many letters the caps (``dead_letter_cap``, ``dead_letter_max_bytes``) have dropped from
        ``queue``'s dead-letter queue."""
        return self._stores.dead_letters.dropped(queue)

    def size(self, queue: str) -> int:
        """Bytes of envelopes ``queue``'s dead-letter queue holds (what ``dead_letter_max_bytes`` caps)."""
        return self._stores.dead_letters.size(queue)

    def add(self, letter: DeadLetter) -> int:
        """Store an envelope as it is (restoring a backup, seeding a test); returns how many the cap dropped."""
        return self._stores.dead_letters.add(letter)

    def select(
        self, ids: list[str] | None = None, where: DeadFilter | None = None, everything: bool = False
    ) -> list[DeadLetter]:
        """Dead letters named by id, or matching a filter that names a task or reason (or ``everything``,
        optionally of one queue). An empty selection is refused so that no call touches all by accident.

        Raises:
            InvalidRequestError: neither ids, a filter nor ``everything``; or ids together with a filter.
            NotFoundError: an id is not a dead letter.
        """
        where = where or DeadFilter()
        narrowed = where.task is not None or where.reason is not None
        if not ids and not narrowed and not everything:
            raise InvalidRequestError("give dead-letter ids, a task or reason filter, or ask for all of them")
        if ids and (narrowed or everything):
            raise InvalidRequestError("give either dead-letter ids or a filter, not both")
        if not ids:
            return list(self.iterate(where))
        letters = []
        for letter_id in ids:
            letter = self.get(letter_id, where.queue)
            if letter is None:
                raise NotFoundError(f"dead letter {letter_id} not found")
            letters.append(letter)
        return letters

    # -- acting -----------------------------------------------------------------------------------

    def requeue(
        self,
        ids: list[str] | None = None,
        where: DeadFilter | None = None,
        everything: bool = False,
        to_queue: str | None = None,
    ) -> list[str]:
        """Requeue the selected dead letters (into ``to_queue`` if given); returns the task ids.

        Raises:
            InvalidRequestError: an empty or contradictory selection. NotFoundError: an unknown id.
            ConfigurationError: an unknown target queue.
        """
        if to_queue is not None:
            self._topology.get(to_queue)
        return [self.requeue_one(letter, to_queue) for letter in self.select(ids, where, everything)]

    def requeue_one(self, letter: DeadLetter, to_queue: str | None = None) -> str:
        """Put one dead letter back to work (attempts reset), in ``to_queue`` or its own queue.

        Into its own queue the letter leaves the dead-letter queue in the same step as its message is queued;
        into another queue, right after (:mod:`taskplane.stores.requeue`).

        Raises:
            NotFoundError: it is no longer a dead letter.
            ConfigurationError: unknown target queue.
        """
        target = to_queue or letter.queue
        if to_queue is not None:
            self._topology.get(to_queue)
        storage = self._stores.storage
        keys = storage.keys
        if letter.raw is not None or letter.name not in self._registry.names():
            raw = letter.raw
            if raw is None:
                raise NotFoundError(f"dead letter {letter.id} has no message to requeue")
            if letter.raw_encoding:
                raise NotFoundError(f"dead letter {letter.id} holds bytes that are not UTF-8 text; not requeued")
            if letter.raw_size:
                raise NotFoundError(
                    f"dead letter {letter.id} kept only the first {len(raw)} of its {letter.raw_size} characters;"
                    " it cannot be requeued"
                )
            requeue = Requeue(letter.dead_queue, letter.id)
            if requeue.across(target):  # two slots: two steps (stores/requeue.py)
                requeue.check(storage.client, keys)
                pipe = storage.client.pipeline(transaction=True)
                queue_items(pipe, keys.queue(target), keys.bell(target), [raw])
                pipe.execute()
                requeue.leave(storage.client, keys, target)
                return letter.id
            pipe = storage.client.pipeline(transaction=False)
            requeue.take(pipe, keys, target, keys.queue(target), raw, 0.0)
            if not pipe.execute()[-1]:
                raise requeue.gone()
            return letter.id
        # The record (queued again, attempts and delivery count reset) is written by the publish hooks in
        # the same MULTI/EXEC as the message: a worker can never start it before the reset lands.
        options: dict[str, Any] = {
            PublishOption.RECORD.value: False,
            PublishOption.REQUEUE_OF.value: [letter.dead_queue, letter.id],
        }
        if letter.priority:
            options["priority"] = letter.priority
        self._celery.send_task(letter.name, letter.args, letter.kwargs, task_id=letter.id, queue=target, **options)
        if target != letter.queue:  # its record goes on in the queue it went to (records live per queue)
            self._stores.records.forget(letter.queue, letter.id)
        return letter.id

    def purge(self, ids: list[str] | None = None, where: DeadFilter | None = None, everything: bool = False) -> int:
        """Delete the selected dead letters for good; returns how many were removed.

        Raises:
            InvalidRequestError: an empty or contradictory selection. NotFoundError: an unknown id.
        """
        return sum(1 for letter in self.select(ids, where, everything) if self._stores.dead_letters.remove(letter))
