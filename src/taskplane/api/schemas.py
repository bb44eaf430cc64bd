"""Request and response bodies of the HTTP API (they are also its OpenAPI schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from taskplane.stores.idempotency import MAX_KEY_LENGTH

NAME = Field(min_length=1, max_length=200)


class ErrorDetail(BaseModel):
    """What went wrong: a stable code, one line for people, and optional structured details."""

    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every error response."""

    error: ErrorDetail


class EnqueueRequest(BaseModel):
    """A task to queue. ``countdown`` and ``eta`` delay it; both cannot be given."""

    model_config = ConfigDict(extra="forbid")

    task: str = NAME
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str | None = Field(default=None, min_length=1, max_length=200)
    countdown: float | None = Field(default=None, ge=0, le=366 * 24 * 3600, description="Seconds to wait.")
    eta: datetime | None = Field(default=None, description="When to run (ISO 8601; no zone means UTC).")
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description="The same key answers with the same task, and queues nothing new.",
    )

    @field_validator("eta")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _one_delay(self) -> EnqueueRequest:
        if self.countdown is not None and self.eta is not None:
            raise ValueError("give countdown or eta, not both")
        return self


#: The most tasks one batch request may queue.
MAX_BATCH = 1000


class BatchItem(BaseModel):
    """The arguments of one task of a batch."""

    model_config = ConfigDict(extra="forbid")

    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)


class BatchRequest(BaseModel):
    """Many calls of one task, queued together (every item is checked before anything is queued)."""

    model_config = ConfigDict(extra="forbid")

    task: str = NAME
    items: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)
    queue: str | None = Field(default=None, min_length=1, max_length=200)
    countdown: float | None = Field(default=None, ge=0, le=366 * 24 * 3600, description="Seconds to wait.")


class BatchResponse(BaseModel):
    """The queued tasks, in the order of the items."""

    task: str
    ids: list[str]


class TaskLinks(BaseModel):
    """Where to follow a task."""

    self: str
    result: str
    events: str


class EnqueueResponse(BaseModel):
    """A queued task."""

    id: str
    task: str
    state: str
    existing: bool = Field(description="True when an idempotency key or unique_for answered with an earlier task.")
    links: TaskLinks


class TaskOut(BaseModel):
    """A task record. Timestamps are Unix milliseconds; fields appear once they are known."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    queue: str
    state: str
    created_ms: int | None = None
    updated_ms: int | None = None
    version: int | None = Field(default=None, description="Bumped by every write to the record.")
    eta_ms: int | None = None
    started_ms: int | None = None
    finished_ms: int | None = None
    attempts: int | None = None
    retries: int | None = None
    worker: str | None = None
    progress_current: float | None = None
    progress_total: float | None = None
    progress_step: str | None = None
    progress_message: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    args: Any = None
    kwargs: Any = None
    result: Any = None


class TaskPage(BaseModel):
    """A page of task records, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    tasks: list[TaskOut]
    next_cursor: str | None


class ResultOut(BaseModel):
    """A finished task's result."""

    id: str
    state: str
    result: Any


class CancelOut(BaseModel):
    """The state after a cancel request (``cancelled`` at once for queued work)."""

    id: str
    state: str


class QueueOut(BaseModel):
    """Depths of one queue."""

    queue: str
    tier: str
    weight: int
    ready: int
    delayed: int
    running: int = Field(description="Taken by a worker and not yet acknowledged.")
    dead: int


class WorkerOut(BaseModel):
    """A live worker, from its heartbeat (times are Unix seconds)."""

    hostname: str
    pid: int
    queues: list[str]
    concurrency: int
    active: int
    processed: int
    started_at: float
    last_heartbeat: float


class DeadLetterOut(BaseModel):
    """A dead letter: the task, why it died, and its last error."""

    id: str
    name: str
    queue: str
    dead_queue: str
    reason: str
    args: list[Any]
    kwargs: dict[str, Any]
    exception_type: str
    exception_message: str
    traceback: str
    attempts: int
    first_failure_ms: int
    last_failure_ms: int
    worker: str
    raw: str | None = None
    #: The raw item's length when only its first 1 MiB was kept (0: kept whole).
    raw_size: int = 0
    #: "base64" when ``raw`` holds the base64 of a queue item's bytes that are not UTF-8 text, else "".
    raw_encoding: str = ""


class DeadLetterPage(BaseModel):
    """A page of dead letters, newest first; pass ``next_offset`` as ``offset`` for the next page."""

    dead_letters: list[DeadLetterOut]
    next_offset: int | None


class DeadLetterSelection(BaseModel):
    """Which dead letters to requeue: ``ids``, or a ``task``/``reason`` filter, or ``all`` (each may be
    narrowed to one ``queue``). ``to_queue`` requeues into another queue."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(default=None, max_length=10_000)
    queue: str | None = None
    task: str | None = None
    reason: str | None = None
    all: bool = False
    to_queue: str | None = None


class RequeueOut(BaseModel):
    """Ids of the tasks put back to work."""

    requeued: list[str]


class PurgeOut(BaseModel):
    """How many dead letters were deleted."""

    purged: int


class HealthOut(BaseModel):
    """The API process answers."""

    status: str


class ReadyOut(BaseModel):
    """Redis answers; how many live workers consume each queue."""

    status: str
    workers_per_queue: dict[str, int]


class ScheduleOut(BaseModel):
    """A periodic schedule and its state. Timestamps are Unix milliseconds."""

    name: str
    task: str
    schedule: str = Field(description="'every 60s' or 'cron 0 2 * * * (UTC)'.")
    queue: str
    missed: str = Field(description="What a slot missed while no scheduler led does: run_once or skip.")
    paused: bool
    next_run_ms: int | None
    last_run_ms: int | None
    last_task_id: str | None
    last_state: str | None
    last_source: str | None = Field(description="fire, late (a missed slot, fired once) or manual.")
    fired: int
    skipped: int
    manual: int


class LeaderOut(BaseModel):
    """The scheduler holding the leader's lease."""

    owner: str
    epoch: int = Field(description="The lease's term number (fencing token).")
    expires_in_ms: int


class SchedulesOut(BaseModel):
    """Every declared schedule, and the current leader (null when no scheduler runs)."""

    leader: LeaderOut | None
    schedules: list[ScheduleOut]


class ScheduleRunOut(BaseModel):
    """A schedule fired by hand."""

    schedule: str
    task_id: str
