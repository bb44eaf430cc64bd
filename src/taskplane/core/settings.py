"""Typed settings: the only place that reads the environment (prefix ``TASKPLANE_``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from taskplane.core.cluster_url import parse_cluster_url
from taskplane.core.errors import ConfigurationError

_REDIS_SCHEMES = ("redis", "rediss", "unix")
#: What makes a directory a project's root (beside a .taskplane/ directory of an earlier run).
PROJECT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", ".git")


def user_state_dir() -> Path:
    """taskplane's directory in the user's state directory (``$XDG_STATE_HOME``, else ``~/.local/state``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "taskplane"


def project_data_dir(start: Path | None = None) -> Path:
    """The data directory of the project ``start`` (default: the current directory) lies in: ``.taskplane/``
    in the nearest directory, from ``start`` upwards, that has a ``.taskplane/`` directory or a project
    marker (``pyproject.toml``, ``setup.cfg``, ``setup.py``, ``.git``); ``start/.taskplane`` if none has."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / ".taskplane").is_dir() or any((directory / marker).exists() for marker in PROJECT_MARKERS):
            return directory / ".taskplane"
    return here / ".taskplane"


class Settings(BaseSettings):
    """Every knob taskplane reads, with its default. Construct with keywords or from the environment."""

    model_config = SettingsConfigDict(env_prefix="TASKPLANE_", extra="forbid", frozen=True)

    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("redis_url", "TASKPLANE_REDIS_URL", "REDIS_URL"),
    )
    key_prefix: str = "taskplane:"
    # The project's .taskplane/, found from any directory inside the project (see project_data_dir).
    data_dir: Path = Field(default_factory=lambda: project_data_dir())
    redis_server: str | None = None  # explicit path of a valkey-server/redis-server binary
    app: str | None = None  # "module[:attr]" used by the CLI when -A is not given

    soft_time_limit: float = Field(default=600.0, gt=0)
    time_limit: float = Field(default=900.0, gt=0)
    result_expires: int = Field(default=24 * 3600, gt=0)
    record_retention: int = Field(default=7 * 24 * 3600, gt=0)
    shutdown_timeout: float = Field(default=30.0, ge=0)
    lease_timeout: float = Field(default=30.0, ge=3)
    max_deliveries: int = Field(default=3, ge=1)
    dead_letter_cap: int = Field(default=100_000, ge=1)
    # Bytes of envelopes one dead-letter queue keeps; the oldest are dropped (and counted) beyond it.
    dead_letter_max_bytes: int = Field(default=256 * 1024 * 1024, ge=64 * 1024)
    max_payload_bytes: int = Field(default=1024 * 1024, gt=0)
    prefetch_multiplier: int = Field(default=1, ge=1)
    # A worker's fetch takes one message more, held for its next free process, and returns it to the head of
    # its queue if no process frees within this (ms): tiers stay strict but for this moment. 0: none.
    lookahead_ms: float = Field(default=10.0, ge=0, le=1000)
    max_tasks_per_child: int = Field(default=10_000, ge=1)
    # A pool process using more than this (MiB, resident) is replaced after its task: bounds leaks in user
    # code without recycling every few seconds (a replacement costs Celery's pool about a second). 0: never.
    max_memory_per_child: int = Field(default=512, ge=0)
    mover_interval: float = Field(default=0.2, gt=0)
    scheduler_lease_ttl: float = Field(default=10.0, ge=1)  # a dead leader is replaced within this
    scheduler_tick: float = Field(default=0.5, gt=0, le=5)  # how often schedulers renew, poll and fire
    scheduler_grace: float = Field(default=5.0, ge=0)  # a slot fired later than this counts as missed
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per log line
    api_max_body_bytes: int = Field(default=1024 * 1024, gt=0)  # larger HTTP request bodies get 413
    api_max_header_bytes: int = Field(default=16 * 1024, gt=0)  # larger HTTP header sets get 431
    api_read_timeout: float = Field(default=30.0, gt=0)  # a body slower than this gets 408
    api_header_timeout: float = Field(default=10.0, gt=0)  # request line and headers later than this: 408, closed
    api_session_ttl: int = Field(default=12 * 3600, gt=0)  # seconds a dashboard sign-in lasts
    api_max_streams: int = Field(default=1000, gt=0)  # open event streams per API process
    api_max_streams_per_key: int = Field(default=100, gt=0)  # open event streams per API key
    # Comma-separated HMAC keys, the signing one first: every message is signed, and a worker refuses
    # (dead-letters as "forged") one that is not signed with any of them.
    signing_key: str | None = Field(default=None, repr=False)

    @field_validator("redis_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            if parse_cluster_url(value) is not None:  # redis+cluster://h1:p1,h2:p2 (rediss+cluster:// with TLS)
                return value
        except ConfigurationError as exc:
            raise ValueError(str(exc).removeprefix("bad Redis URL: ")) from None
        parsed = urlparse(value)
        if parsed.scheme not in _REDIS_SCHEMES:
            raise ValueError(
                f"must start with redis://, rediss://, unix:// or redis+cluster:// (rediss+cluster://) (got {value!r})"
            )
        if parsed.scheme != "unix":
            try:
                parsed.port  # noqa: B018 - raises ValueError on a bad port
            except ValueError as exc:
                raise ValueError(f"has a bad port: {value!r}") from exc
            if not parsed.hostname:
                raise ValueError(f"has no host: {value!r}")
        return value

    @field_validator("key_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not value or any(ch.isspace() for ch in value):
            raise ValueError("must be a non-empty string without spaces")
        opened = value.find("{")
        if (opened >= 0 and value.find("}", opened + 2) < 0) or (opened < 0 and "}" in value):
            # Keys.tag: a queue's keys share a cluster slot through a hash tag; a brace that makes no complete
            # tag would leave each key in a slot of its own
            raise ValueError(f"{value!r} holds a brace of no complete hash tag: use one like '{{tp}}:', or none")
        return value


def load_settings(**overrides: object) -> Settings:
    """Build settings from keyword overrides and the environment.

    Raises:
        ConfigurationError: one line naming the first bad setting.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        name = where if where.startswith("TASKPLANE_") or where == "REDIS_URL" else f"{where}"
        raise ConfigurationError(f"bad setting {name}: {first['msg']}") from None
