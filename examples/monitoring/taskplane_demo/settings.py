"""Settings of the reference workload (prefix ``TASKPLANE_DEMO_``): database, mail, webhooks, timings."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DemoSettings(BaseSettings):
    """Knobs of the monitoring app. The defaults are production-like; ``taskplane demo`` shortens the timings."""

    model_config = SettingsConfigDict(env_prefix="TASKPLANE_DEMO_", extra="forbid", frozen=True)

    database_url: str = ""  # SQLAlchemy URL; empty: SQLite under the taskplane data directory
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    alert_from: str = "monitor@taskplane.local"
    webhook_secret: str = "change-me"  # HMAC-SHA256 key shared with the webhook receivers
    webhook_timeout: float = Field(default=10.0, gt=0)
    webhook_backoff: tuple[float, ...] = (60.0, 300.0, 900.0)  # retries 1m / 5m / 15m, with jitter
    fetch_timeout: float = Field(default=10.0, gt=0)
    scan_every: float = Field(default=60.0, ge=1)  # how often due monitors are fanned out
    retention_days: float = Field(default=30.0, gt=0)
    analysis_step_seconds: float = Field(default=0.0, ge=0)  # a pause per analysis step (to watch progress)
    anomaly_bucket_seconds: float = Field(default=3600.0, gt=0)  # change rates are counted per bucket
    anomaly_threshold: float = Field(default=3.0, gt=0)  # flag buckets above mean + threshold * std


@cache
def demo_settings() -> DemoSettings:
    """The settings, read from the environment once per process."""
    return DemoSettings()


def database_url(settings: DemoSettings, data_dir: Path) -> str:
    """The configured database URL, else a SQLite file under ``data_dir``."""
    return settings.database_url or f"sqlite:///{(data_dir / 'monitoring.sqlite').resolve()}"
