"""The task record's state machine: the one table of which state a record may move to from each. Every
record write goes through ``write_record`` (``redis/lua/record_lib.lua``), which follows it: a write that
would make a move the table does not allow is refused whole (nothing of it is written)."""

from __future__ import annotations

from collections.abc import Mapping

from taskplane.core.protocol import TaskState

#: Waiting for a worker: in a queue, in the delayed store (a countdown, a rate-limit wait), or between
#: attempts.
WAITING = frozenset({TaskState.QUEUED, TaskState.SCHEDULED, TaskState.RETRYING})
#: A worker runs it.
RUNNING = frozenset({TaskState.STARTED, TaskState.PROGRESS})

#: From each state, the states a record may move to. A new record may take any state. Rules:
#: - a waiting task starts, waits again (a requeue, a rate-limit wait), is cancelled, dead-lettered (an
#:   expiry, a poison count) or succeeds without a start (an eager or inline run records none);
#: - a running task reports progress, finishes (succeeded, dead, cancelled), waits for a retry or a rate
#:   limit, is returned to its queue (a stopping worker) or starts again (a redelivery after a crash);
#: - succeeded is final: a late write (a duplicate delivery, a stale worker) never changes it;
#: - dead and cancelled are left by a requeue (queued, scheduled); a dead task's copy that still reaches a
#:   worker is recorded as it runs (started);
#: - progress only while running.
TRANSITIONS: Mapping[TaskState, frozenset[TaskState]] = {
    TaskState.QUEUED: WAITING | {TaskState.STARTED, TaskState.CANCELLED, TaskState.DEAD, TaskState.SUCCEEDED},
    TaskState.SCHEDULED: WAITING | {TaskState.STARTED, TaskState.CANCELLED, TaskState.DEAD, TaskState.SUCCEEDED},
    TaskState.RETRYING: WAITING | {TaskState.STARTED, TaskState.CANCELLED, TaskState.DEAD, TaskState.SUCCEEDED},
    TaskState.STARTED: WAITING | RUNNING | {TaskState.SUCCEEDED, TaskState.DEAD, TaskState.CANCELLED},
    TaskState.PROGRESS: WAITING | RUNNING | {TaskState.SUCCEEDED, TaskState.DEAD, TaskState.CANCELLED},
    TaskState.SUCCEEDED: frozenset({TaskState.SUCCEEDED}),
    TaskState.DEAD: frozenset({TaskState.DEAD, TaskState.QUEUED, TaskState.SCHEDULED, TaskState.STARTED}),
    TaskState.CANCELLED: frozenset({TaskState.CANCELLED, TaskState.QUEUED, TaskState.SCHEDULED}),
}


def allowed(old: str | None, new: str) -> bool:
    """True if a record in state ``old`` (None: no record yet) may move to ``new``."""
    return old is None or TaskState(new) in TRANSITIONS[TaskState(old)]


def transitions_lua() -> str:
    """:data:`TRANSITIONS` as a Lua table for the record writer: ``TRANSITIONS[old][new]`` is true for an
    allowed move (put in front of ``record_lib.lua`` by ``redis/scripts.py``)."""
    rows = (f"{old} = {{{', '.join(f'{new} = true' for new in sorted(news))}}}" for old, news in TRANSITIONS.items())
    return f"local TRANSITIONS = {{{', '.join(rows)}}}"
