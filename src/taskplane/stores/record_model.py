"""What a task record is: its states (and which are indexed), its decoded form and a page of them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from taskplane.core.protocol import STATE_ALIASES, TERMINAL_STATES, TaskState
from taskplane.core.transitions import RUNNING

#: Every state.
STATES: tuple[str, ...] = tuple(TaskState)
#: States of a task in flight: not indexed (the start of a task costs no index move); a search for them
#: reads the in-flight deliveries instead, which are few.
RUNNING_STATES: tuple[str, ...] = tuple(state for state in STATES if state in RUNNING)
#: States with an index, in the order of the record script's index keys.
INDEXED_STATES: tuple[str, ...] = tuple(state for state in STATES if state not in RUNNING_STATES)
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
    "version",
)


def delivery_attempt(retries: int, headers: Mapping[str, Any]) -> str:
    """The attempt whose deliveries the record counts (poison detection): the task's retries, and, when
    Celery's ``replace()`` replaced it, how often (a replacement keeps the task id, and is a new attempt, not
    a redelivery). ``fetch.lua`` computes the same."""
    nesting = headers.get("replaced_task_nesting")
    if isinstance(nesting, int) and not isinstance(nesting, bool) and nesting >= 1:
        return f"{retries}.{nesting}"
    return str(retries)


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


@dataclass
class RecordPage:
    """One page of task records; ``next_cursor`` is None on the last page."""

    records: list[TaskRecord]
    next_cursor: str | None
