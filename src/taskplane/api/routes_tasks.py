"""``/tasks``: enqueue, look up, follow, cancel and list tasks."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BeforeValidator

from taskplane.api.auth import Tp, require
from taskplane.api.errors import ApiError
from taskplane.api.events import task_events
from taskplane.api.schemas import (
    BatchRequest,
    BatchResponse,
    CancelOut,
    EnqueueRequest,
    EnqueueResponse,
    ErrorBody,
    ResultOut,
    TaskLinks,
    TaskOut,
    TaskPage,
)
from taskplane.api.stream_hub import StreamHub, TooManyStreams
from taskplane.client.producer import Call
from taskplane.core.protocol import STATE_ALIASES
from taskplane.stores.api_keys import ApiKey
from taskplane.stores.cursors import CURSOR_PATTERN
from taskplane.stores.records import STATES, TaskRecord

router = APIRouter(tags=["tasks"])
TaskId = Annotated[str, Path(min_length=1, max_length=200)]
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (401, 403, 404, 409, 413, 422, 503)
}
# The event stream answers its errors (before the stream starts) as JSON, not as events.
STREAM_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    for status in (*ERRORS, 429)
}


def _iso_only(value: Any) -> Any:
    """Refuse bare numbers, which pydantic would read as Unix timestamps: the schema promises ISO 8601."""
    if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9]+(\.[0-9]*)?", value.strip()):
        raise ValueError("use an ISO 8601 date-time such as 2026-01-31T12:00:00Z")
    return value


IsoTime = Annotated[datetime | None, BeforeValidator(_iso_only)]


def _ms(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _record(tp: Tp, task_id: TaskId) -> TaskRecord:
    record = tp.status(task_id)
    if record is None:
        raise ApiError(404, "not_found", f"task {task_id} not found")
    return record


@router.post(
    "/tasks",
    status_code=202,
    response_model=EnqueueResponse,
    responses=ERRORS,
    dependencies=[Depends(require("enqueue"))],
)
def enqueue(body: EnqueueRequest, request: Request, tp: Tp) -> EnqueueResponse:
    """Queue a task by name. The arguments are checked against the task's signature before anything is queued."""
    handle = tp.enqueue(
        body.task,
        body.args,
        body.kwargs,
        queue=body.queue,
        countdown=body.countdown,
        eta=body.eta,
        idempotency_key=body.idempotency_key,
    )
    delayed = body.countdown or body.eta
    state = handle.state if handle.existing else ("scheduled" if delayed else "queued")
    # The task's URL is this request's URL plus its id (url_for walks every route: 0.3 ms a call).
    task_url = f"{str(request.url).split('?', 1)[0].rstrip('/')}/{quote(handle.id, safe='')}"
    return EnqueueResponse(
        id=handle.id,
        task=body.task,
        state=state,
        existing=handle.existing,
        links=TaskLinks(self=task_url, result=f"{task_url}/result", events=f"{task_url}/events"),
    )


@router.post(
    "/tasks/batch",
    status_code=202,
    response_model=BatchResponse,
    responses=ERRORS,
    dependencies=[Depends(require("enqueue"))],
)
def enqueue_batch(body: BatchRequest, tp: Tp) -> BatchResponse:
    """Queue up to 1,000 calls of one task, 200 per Redis round trip. Every item's arguments are checked
    first: one bad item (named by its index) queues nothing."""
    calls = [Call(item.args, item.kwargs) for item in body.items]
    handles = tp.enqueue_many(body.task, calls, queue=body.queue, countdown=body.countdown)
    return BatchResponse(task=body.task, ids=[handle.id for handle in handles])


#: The states a task list filters on, and their aliases.
STATE_PATTERN = "^(" + "|".join([*STATES, *STATE_ALIASES]) + ")$"


@router.get("/tasks", response_model=TaskPage, responses=ERRORS, dependencies=[Depends(require("read"))])
def list_tasks(
    tp: Tp,
    state: Annotated[
        str | None,
        Query(pattern=STATE_PATTERN, description=f"One of {', '.join(STATES)} (or failed, pending, running)."),
    ] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    queue: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[IsoTime, Query(description="Created at or after (ISO 8601, UTC if no zone).")] = None,
    until: Annotated[IsoTime, Query(description="Created at or before.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[
        str | None,
        Query(  # the pattern is published, and checked by the cursor's decoding (its error says what to pass)
            max_length=500,
            json_schema_extra={"pattern": CURSOR_PATTERN},
            description="next_cursor of the previous page.",
        ),
    ] = None,
    id_prefix: Annotated[str | None, Query(max_length=200, description="Ids starting with this.")] = None,
) -> TaskPage:
    """Task records, newest first, filtered, a page at a time. One request reads at most 5,000 index
    entries: a page can hold fewer than ``limit`` tasks and still have a ``next_cursor``."""
    page = tp.tasks(state, name, queue, _ms(since), _ms(until), limit, cursor, id_prefix)
    return TaskPage(tasks=[TaskOut(**record.to_dict()) for record in page.records], next_cursor=page.next_cursor)


@router.get("/tasks/{task_id}", response_model=TaskOut, responses=ERRORS, dependencies=[Depends(require("read"))])
def get_task(record: Annotated[TaskRecord, Depends(_record)]) -> TaskOut:
    """The task's record: state, progress, timestamps, attempts, worker, error."""
    return TaskOut(**record.to_dict())


@router.get(
    "/tasks/{task_id}/result", response_model=ResultOut, responses=ERRORS, dependencies=[Depends(require("read"))]
)
def get_task_result(tp: Tp, task_id: TaskId) -> ResultOut:
    """The result of a succeeded task; 409 while it is not finished, or when it ended without a result."""
    return ResultOut(id=task_id, state="succeeded", result=tp.result(task_id))


@dataclass
class _Stream:
    """One event stream's place: the hub, and what is closed when the request ends."""

    hub: StreamHub
    closing: contextlib.AsyncExitStack


async def _stream_place(request: Request, key: Annotated[ApiKey, Depends(require("read"))]) -> AsyncIterator[_Stream]:
    """The API process's stream hub, with a place for one more stream of ``key`` held until the stream
    ends (the request's dependencies end after its response); 429 at once past a limit."""
    hub: StreamHub = request.app.state.stream_hub
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(hub.place(key.id))
        except TooManyStreams as exc:
            raise ApiError(429, "too_many_streams", str(exc), None, {"Retry-After": "5"}) from None
        async with contextlib.AsyncExitStack() as closing:
            yield _Stream(hub, closing)


@router.get("/tasks/{task_id}/events", response_class=EventSourceResponse, responses=STREAM_ERRORS)
async def task_event_stream(
    tp: Tp,
    stream: Annotated[_Stream, Depends(_stream_place)],  # first: the key is checked before the record
    record: Annotated[TaskRecord, Depends(_record)],
) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events: ``state``, ``progress`` and ``update`` events carry the whole record; the stream
    ends after the task's final state. ``error`` ends it early (the record expired, Redis is unreachable,
    too many streams). Past ``api_max_streams_per_key`` streams of one key, or ``api_max_streams`` in all,
    a new one gets 429. A quiet stream gets a keep-alive comment every 15 s."""
    # Closed when the request ends, however it ends: a client gone stops this generator where it waits to
    # hand on an event, and nothing would close the events (and leave their channel) but the collector.
    events = task_events(stream.hub, tp.storage.keys, record.queue, record.id)
    await stream.closing.enter_async_context(contextlib.aclosing(events))
    async for event in events:
        yield event


@router.delete(
    "/tasks/{task_id}", response_model=CancelOut, responses=ERRORS, dependencies=[Depends(require("enqueue"))]
)
def cancel_task(
    tp: Tp,
    task_id: TaskId,
    terminate_after: Annotated[
        float | None,
        Query(ge=0, le=24 * 3600, description="Kill a running task this many seconds after asking it to stop."),
    ] = None,
) -> CancelOut:
    """Cancel a task: queued or delayed never runs; running sees ``is_cancelled()`` (and is terminated
    after ``terminate_after`` seconds if given). A finished task keeps its state."""
    return CancelOut(id=task_id, state=tp.cancel(task_id, terminate_after=terminate_after))
