"""``/dead-letters``: list, show, requeue and purge."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from taskplane.api.auth import Tp, require
from taskplane.api.errors import ApiError
from taskplane.api.routes_tasks import ERRORS
from taskplane.api.schemas import DeadLetterOut, DeadLetterPage, DeadLetterSelection, PurgeOut, RequeueOut
from taskplane.api.schemas_ops import DeadLetterCount
from taskplane.stores.dead_letters import DeadFilter

router = APIRouter(tags=["dead letters"])
Text = Annotated[str | None, Query(max_length=200)]


@router.get("/dead-letters", response_model=DeadLetterPage, responses=ERRORS, dependencies=[Depends(require("read"))])
def list_dead_letters(
    tp: Tp,
    queue: Text = None,
    task: Text = None,
    reason: Text = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> DeadLetterPage:
    """Dead letters newest first, filtered by queue, task and reason, paged by offset."""
    letters = tp.dead_letters.find(DeadFilter(queue=queue, task=task, reason=reason), limit=limit, offset=offset)
    return DeadLetterPage(
        dead_letters=[DeadLetterOut(**letter.to_dict()) for letter in letters],
        next_offset=offset + len(letters) if len(letters) == limit else None,
    )


@router.get(
    "/dead-letters/count", response_model=DeadLetterCount, responses=ERRORS, dependencies=[Depends(require("read"))]
)
def count_dead_letters(tp: Tp, queue: Text = None, task: Text = None, reason: Text = None) -> DeadLetterCount:
    """How many dead letters match (what a requeue or purge by this filter would take). Counted from the
    indexes without a task or reason filter; with one, the letters are read page by page."""
    return DeadLetterCount(count=tp.dead_letters.count(DeadFilter(queue=queue, task=task, reason=reason)))


@router.get(
    "/dead-letters/{letter_id}",
    response_model=DeadLetterOut,
    responses=ERRORS,
    dependencies=[Depends(require("read"))],
)
def get_dead_letter(tp: Tp, letter_id: Annotated[str, Path(min_length=1, max_length=200)]) -> DeadLetterOut:
    """One dead letter with its traceback (and the raw message, for malformed ones)."""
    letter = tp.dead_letters.get(letter_id)
    if letter is None:
        raise ApiError(404, "not_found", f"dead letter {letter_id} not found")
    return DeadLetterOut(**letter.to_dict(with_raw=True))


@router.post(
    "/dead-letters/requeue", response_model=RequeueOut, responses=ERRORS, dependencies=[Depends(require("admin"))]
)
def requeue_dead_letters(tp: Tp, selection: DeadLetterSelection) -> RequeueOut:
    """Put the selected dead letters back to work with attempts reset; each leaves its dead-letter queue
    as it enters the work queue."""
    where = DeadFilter(queue=selection.queue, task=selection.task, reason=selection.reason)
    return RequeueOut(requeued=tp.dead_letters.requeue(selection.ids, where, selection.all, selection.to_queue))


@router.delete("/dead-letters", response_model=PurgeOut, responses=ERRORS, dependencies=[Depends(require("admin"))])
def purge_dead_letters(
    tp: Tp,
    ids: Annotated[list[str] | None, Query(alias="id", max_length=1000, description="Dead-letter ids.")] = None,
    queue: Text = None,
    task: Text = None,
    reason: Text = None,
    all: Annotated[bool, Query(description="Every dead letter (of queue, if given).")] = False,
) -> PurgeOut:
    """Delete the selected dead letters for good: ``id`` (repeatable), or a ``task``/``reason`` filter, or
    ``all=true``; each may be narrowed to one ``queue``."""
    return PurgeOut(purged=tp.dead_letters.purge(ids, DeadFilter(queue=queue, task=task, reason=reason), all))
