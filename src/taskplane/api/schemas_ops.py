"""Bodies of the dashboard's endpoints: the session, the per-minute history, dead-letter counts, firing logs."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SessionIn(BaseModel):
    """An API key to sign in with; it is kept in an HttpOnly cookie, never in the page."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=200)


class SessionOut(BaseModel):
    """The signed-in key: its name and scopes (what the page shows and allows)."""

    name: str
    scopes: list[str]


class MinuteOut(BaseModel):
    """What the workers finished in one minute (starting at ``minute_ms``, Unix milliseconds)."""

    minute_ms: int
    succeeded: int
    failed: int
    retried: int
    rejected: int
    revoked: int


class HistoryOut(BaseModel):
    """One entry per minute, oldest first, the current minute last."""

    minutes: list[MinuteOut]


class DeadLetterCount(BaseModel):
    """How many dead letters a filter matches."""

    count: int


class FireOut(BaseModel):
    """One entry of a schedule's firing log (times in Unix milliseconds)."""

    kind: str = Field(description="fire, late (a missed slot fired once), skip (a missed slot passed) or manual.")
    slot_ms: int | None = None
    fired_ms: int | None = None
    task_id: str | None = None
    epoch: int | None = Field(default=None, description="The leader's term that fired it.")


class FiresOut(BaseModel):
    """A schedule's latest firings, newest first."""

    schedule: str
    fires: list[FireOut]
