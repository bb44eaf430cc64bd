"""Durable task records (one hash per task) and their indexes by state, name and queue."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from taskplane.storage import Storage

STATES = ("queued", "scheduled", "started", "progress", "retrying", "succeeded", "dead", "cancelled")
TERMINAL_STATES = frozenset({"succeeded", "dead", "cancelled"})
STATE_ALIASES = {"failed": "dead", "pending": "queued", "running": "started"}
_MAX_VALUE_CHARS = 4096
_INT_FIELDS = (
    "created_ms",
    "updated_ms",
    "eta_ms",
    "started_ms",
    "finished_ms",
    "attempts",
    "retries",
    "deliveries",
    "first_failure_ms",
    "next_attempt_ms",
    "progress_updated_ms",
    "requeued_ms",
    "cancel_requested_ms",
)


def now_ms() -> int:
    """Wall-clock time in whole milliseconds."""
    return int(time.time() * 1000)


def compact_json(value: Any, limit: int = _MAX_VALUE_CHARS) -> tuple[str, bool]:
    """JSON text of ``value`` cut to ``limit`` characters; the flag says whether it was cut."""
    text = json.dumps(value, default=repr, separators=(",", ":"))
    if len(text) <= limit:
        return text, False
    return text[:limit], True


def normalise_state(state: str) -> str:
    """The canonical state name for ``state`` (accepts aliases such as ``failed``).

    Raises:
        ValueError: not a known state.
    """
    state = STATE_ALIASES.get(state, state)
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}; valid: {', '.join(STATES)}")
    return state


@dataclass
class TaskRecord:
    """What taskplane knows about one task."""

    id: str
    name: str
    queue: str
    state: str
    fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, task_id: str, data: dict[str, str]) -> TaskRecord:
        """Decode a record hash."""
        fields: dict[str, Any] = {}
        for key, value in data.items():
            if key in _INT_FIELDS:
                fields[key] = int(float(value))
            elif key in ("runtime", "progress_current", "progress_total"):
                fields[key] = float(value)
            else:
                fields[key] = value
        return cls(
            id=task_id,
            name=str(fields.pop("name", "")),
            queue=str(fields.pop("queue", "")),
            state=str(fields.pop("state", "queued")),
            fields=fields,
        )

    @property
    def done(self) -> bool:
        """True once the task has reached a terminal state."""
        return self.state in TERMINAL_STATES

    def result(self) -> Any:
        """The stored result (decoded JSON) or None."""
        raw = self.fields.get("result")
        if raw is None or self.fields.get("result_truncated") == "1":
            return None
        return json.loads(raw)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view of the record."""
        data: dict[str, Any] = {"id": self.id, "name": self.name, "queue": self.queue, "state": self.state}
        for key, value in sorted(self.fields.items()):
            if key in ("args", "kwargs", "result"):
                try:
                    data[key] = json.loads(value)
                except ValueError:
                    data[key] = value
            else:
                data[key] = value
        return data


class RecordStore:
    """Reads and writes task records; every write refreshes the record's retention."""

    def __init__(self, storage: Storage, retention_seconds: int) -> None:
        self._storage = storage
        self._retention = retention_seconds

    def write(
        self, task_id: str, name: str, queue: str, state: str | None = None, pipe: Any = None, **fields: Any
    ) -> None:
        """Set ``fields`` (and the state, keeping indexes in step) on a task's record, creating it if new."""
        keys = self._storage.keys
        state_keys = [keys.index_state(s) for s in STATES]
        position = 0 if state is None else 5 + STATES.index(state)
        stamp = now_ms()
        values: dict[str, Any] = {"id": task_id, "name": name, "queue": queue, "updated_ms": stamp, **fields}
        if state is not None:
            values["state"] = state
        # "id" must come first: the script reads ARGV[5] as the id for the indexes.
        flat: list[Any] = []
        for key, value in values.items():
            if value is None:
                continue
            flat.extend((key, value))
        self._storage.scripts.run(
            "record_write",
            keys=[keys.record(task_id), keys.index_all(), keys.index_name(name), keys.index_queue(queue), *state_keys],
            args=[position, stamp, self._retention, *flat],
            client=pipe,
        )

    def get(self, task_id: str) -> TaskRecord | None:
        """The record, or None if no such task was ever recorded (or it expired)."""
        data = self._storage.client.hgetall(self._storage.keys.record(task_id))
        if not data:
            return None
        return TaskRecord.from_hash(task_id, data)

    def delete(self, task_id: str) -> None:
        """Remove a record and its index entries (used when an enqueue did not happen)."""
        record = self.get(task_id)
        keys = self._storage.keys
        pipe = self._storage.client.pipeline()
        pipe.delete(keys.record(task_id))
        pipe.zrem(keys.index_all(), task_id)
        for state in STATES:
            pipe.zrem(keys.index_state(state), task_id)
        if record is not None:
            pipe.zrem(keys.index_name(record.name), task_id)
            pipe.zrem(keys.index_queue(record.queue), task_id)
        pipe.execute()

    def find(
        self,
        state: str | None = None,
        name: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[TaskRecord]:
        """Records newest first, filtered by state, name and queue, paged by ``offset``/``limit``."""
        keys = self._storage.keys
        if state is not None:
            state = normalise_state(state)
            index = keys.index_state(state)
        elif name is not None:
            index = keys.index_name(name)
        elif queue is not None:
            index = keys.index_queue(queue)
        else:
            index = keys.index_all()
        wanted: list[TaskRecord] = []
        skipped = 0
        start = 0
        page = max(limit, 100)
        while len(wanted) < limit:
            ids = self._storage.client.zrevrange(index, start, start + page - 1)
            if not ids:
                break
            start += len(ids)
            pipe = self._storage.client.pipeline(transaction=False)
            for task_id in ids:
                pipe.hgetall(keys.record(task_id))
            for task_id, data in zip(ids, pipe.execute(), strict=True):
                if not data:
                    continue
                record = TaskRecord.from_hash(task_id, data)
                if (
                    (state and record.state != state)
                    or (name and record.name != name)
                    or (queue and record.queue != queue)
                ):
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                wanted.append(record)
                if len(wanted) >= limit:
                    break
        return wanted

    def trim(self, names: list[str], queues: list[str]) -> int:
        """Drop index entries older than the retention (their records have expired). Returns how many."""
        keys = self._storage.keys
        cutoff = now_ms() - self._retention * 1000
        indexes = [keys.index_all(), *(keys.index_state(s) for s in STATES)]
        indexes += [keys.index_name(n) for n in names] + [keys.index_queue(q) for q in queues]
        pipe = self._storage.client.pipeline(transaction=False)
        for index in indexes:
            pipe.zremrangebyscore(index, "-inf", cutoff)
        return int(sum(pipe.execute()))
