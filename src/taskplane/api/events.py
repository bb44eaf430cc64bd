"""The live event stream of one task: every state and progress change, until it ends.

Record writes publish their changed fields (``record_write.lua``). The stream subscribes first (on the
API process's one shared subscription, :mod:`taskplane.api.stream_hub`), then reads the record, so
nothing written in between is missed; it re-reads the record whenever the channel is quiet, so a lost
message (a Redis reconnect) delays an event but never drops the end. FastAPI sends a keep-alive comment
every 15 s of quiet, so a stream lives as long as its client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

from fastapi.sse import ServerSentEvent

from taskplane.api.stream_hub import StreamHub
from taskplane.core.protocol import TERMINAL_STATES
from taskplane.redis.client import CONNECTION_ERRORS, unavailable
from taskplane.redis.keys import Keys
from taskplane.stores.records import TaskRecord

RESYNC_INTERVAL = 5.0  # seconds without a message before the record is read again
_PROGRESS_FIELDS = frozenset({"progress_current", "progress_total", "progress_step", "progress_message"})


def _kind(previous: dict[str, Any] | None, current: dict[str, Any]) -> str:
    """``state`` for a new state (and the first event), ``progress`` for new progress, else ``update``."""
    if previous is None or previous.get("state") != current.get("state"):
        return "state"
    if any(previous.get(name) != current.get(name) for name in _PROGRESS_FIELDS):
        return "progress"
    return "update"


async def task_events(hub: StreamHub, keys: Keys, queue: str, task_id: str) -> AsyncGenerator[ServerSentEvent]:
    """Events for ``task_id`` (recorded in ``queue``): ``state``, ``progress`` and ``update`` carry the whole
    record as JSON; ``error`` ends a stream that cannot go on (record expired, Redis unreachable)."""
    sequence = 0
    previous: dict[str, Any] | None = None
    try:
        async with hub.subscription(keys.events(queue, task_id)) as changes:
            raw: dict[str, str] = await hub.client.hgetall(keys.record(queue, task_id))
            while raw:
                current = TaskRecord.from_hash(task_id, raw).to_dict()
                if current != previous:
                    sequence += 1
                    yield ServerSentEvent(event=_kind(previous, current), data=current, id=str(sequence))
                    previous = current
                if current["state"] in TERMINAL_STATES:
                    return
                try:
                    change = json.loads(await asyncio.wait_for(changes.get(), RESYNC_INTERVAL))
                except TimeoutError:
                    raw = await hub.client.hgetall(keys.record(queue, task_id))
                    continue
                # A change published before the record was read is already in it: do not step back.
                if int(change.get("version", 0)) > int(raw.get("version", 0)):
                    raw.update(change)
            yield ServerSentEvent(
                event="error", data={"code": "not_found", "message": f"task {task_id} not found (expired?)"}
            )
    except CONNECTION_ERRORS as exc:
        message_text = str(unavailable(hub.redis_url, exc))
        yield ServerSentEvent(event="error", data={"code": "redis_unavailable", "message": message_text})
