"""Names ``Taskplane`` had before its namespaces; kept one release, each with a DeprecationWarning."""

from __future__ import annotations

import warnings
from typing import Any

from taskplane.client.dead_letters import DeadLetters
from taskplane.client.queues import Queues
from taskplane.client.workers import Workers
from taskplane.core.protocol import DeadReason
from taskplane.middleware.failure import FailurePath
from taskplane.stores.dead_letters import DeadFilter, DeadLetter


def deprecated(old: str, new: str) -> None:
    """Warn that ``old`` is going away in favour of ``new``."""
    warnings.warn(f"{old} is deprecated and will be removed in the next release; use {new}", DeprecationWarning, 3)


class DeprecatedNames:
    """The old top-level operations of ``Taskplane``, forwarding to ``tp.queues``, ``tp.workers`` and
    ``tp.dead_letters``."""

    dead_letters: DeadLetters
    queues: Queues
    workers: Workers
    failure: FailurePath

    def queue_stats(self) -> list[dict[str, Any]]:
        """Deprecated: use ``tp.queues.stats()``."""
        deprecated("tp.queue_stats()", "tp.queues.stats()")
        return self.queues.stats()

    def workers_per_queue(self) -> dict[str, int]:
        """Deprecated: use ``tp.workers.per_queue()``."""
        deprecated("tp.workers_per_queue()", "tp.workers.per_queue()")
        return self.workers.per_queue()

    def requeue_dead(self, letter: DeadLetter, to_queue: str | None = None) -> str:
        """Deprecated: use ``tp.dead_letters.requeue_one(letter)``."""
        deprecated("tp.requeue_dead()", "tp.dead_letters.requeue_one()")
        return self.dead_letters.requeue_one(letter, to_queue)

    def select_dead(
        self, ids: list[str] | None = None, where: DeadFilter | None = None, everything: bool = False
    ) -> list[DeadLetter]:
        """Deprecated: use ``tp.dead_letters.select()``."""
        deprecated("tp.select_dead()", "tp.dead_letters.select()")
        return self.dead_letters.select(ids, where, everything)

    def requeue_dead_letters(
        self,
        ids: list[str] | None = None,
        where: DeadFilter | None = None,
        everything: bool = False,
        to_queue: str | None = None,
    ) -> list[str]:
        """Deprecated: use ``tp.dead_letters.requeue()``."""
        deprecated("tp.requeue_dead_letters()", "tp.dead_letters.requeue()")
        return self.dead_letters.requeue(ids, where, everything, to_queue)

    def purge_dead_letters(
        self, ids: list[str] | None = None, where: DeadFilter | None = None, everything: bool = False
    ) -> int:
        """Deprecated: use ``tp.dead_letters.purge()``."""
        deprecated("tp.purge_dead_letters()", "tp.dead_letters.purge()")
        return self.dead_letters.purge(ids, where, everything)

    def bury(self, letter: DeadLetter, unique_digest: str | None = None, **record_fields: Any) -> None:
        """Deprecated: dead letters are made by the failure path (``tp.failure.bury``)."""
        deprecated("tp.bury()", "tp.failure.bury()")
        runtime = record_fields.get("runtime")
        self.failure.bury(
            DeadReason(letter.reason),
            task_id=letter.id,
            name=letter.name,
            queue=letter.queue,
            attempts=letter.attempts,
            worker=letter.worker,
            args=letter.args,
            kwargs=letter.kwargs,
            exception_type=letter.exception_type,
            message=letter.exception_message,
            raw=letter.raw,
            unique_digest=unique_digest,
            runtime=float(runtime) if runtime is not None else None,
            traceback_text=letter.traceback,
        )
