"""Operations on dead letters that need the whole app: bury, requeue (atomic), select, purge.

The CLI and (later) the HTTP API call these; the store itself lives in ``deadletter.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskplane.stores.dead_letters import DeadFilter, DeadLetter
from taskplane.core.errors import InvalidRequestError, NotFoundError
from taskplane.stores.records import now_ms

if TYPE_CHECKING:
    from taskplane.app import Taskplane


def requeue(tp: Taskplane, letter: DeadLetter, to_queue: str | None = None) -> str:
    """Put one dead letter back to work (attempts reset), in ``to_queue`` or its own queue.

    The letter leaves the dead-letter queue in the same step as its message is queued.

    Raises:
        NotFoundError: it is no longer a dead letter.
        ConfigurationError: unknown target queue.
    """
    target = to_queue or letter.queue
    if to_queue is not None:
        tp.topology.get(to_queue)
    client = tp.storage.client
    keys = tp.storage.keys
    if letter.raw is not None or letter.name not in tp.task_names():
        raw = letter.raw
        if raw is None:
            raise NotFoundError(f"dead letter {letter.id} has no message to requeue")
        taken = tp.storage.scripts.run(
            "dead_take",
            keys=[keys.dead_index(letter.dead_queue), keys.dead_items(letter.dead_queue), target],
            args=[letter.id, raw, "list", "0"],
        )
        if not taken:
            raise NotFoundError(f"dead letter {letter.id} is no longer in {letter.dead_queue}")
        return letter.id
    client.delete(*(keys.deliveries(letter.id, attempt) for attempt in range(letter.attempts + 1)))
    tp.celery.send_task(
        letter.name,
        letter.args,
        letter.kwargs,
        task_id=letter.id,
        queue=target,
        taskplane_record=False,
        taskplane_requeue_of=[letter.dead_queue, letter.id],
    )
    tp.records.write(
        letter.id,
        letter.name,
        target,
        "queued",
        attempts=0,
        retries=0,
        requeued_ms=now_ms(),
        reason="",
        error_type="",
        error_message="",
    )
    return letter.id


def bury(tp: Taskplane, letter: DeadLetter, unique_digest: str | None = None, **record_fields: Any) -> None:
    """Dead-letter a task: store its envelope, mark its record dead, release its uniqueness lock."""
    tp.dead_letters.add(letter)
    if letter.name:
        tp.records.write(
            letter.id,
            letter.name,
            letter.queue,
            "dead",
            finished_ms=letter.last_failure_ms,
            reason=letter.reason,
            error_type=letter.exception_type,
            error_message=letter.exception_message,
            **record_fields,
        )
    if unique_digest:
        tp.unique_locks.release(unique_digest, letter.id)


def select(
    tp: Taskplane, ids: list[str] | None = None, where: DeadFilter | None = None, everything: bool = False
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
    if ids:
        letters = []
        for letter_id in ids:
            letter = tp.dead_letters.get(letter_id, where.queue)
            if letter is None:
                raise NotFoundError(f"dead letter {letter_id} not found")
            letters.append(letter)
        return letters
    return list(tp.dead_letters.iterate(where))


def purge(tp: Taskplane, letters: list[DeadLetter]) -> int:
    """Delete dead letters; returns how many were removed."""
    removed = 0
    for letter in letters:
        if tp.dead_letters.remove(letter):
            removed += 1
    return removed
