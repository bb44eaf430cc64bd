"""The monitoring app's tables (SQLAlchemy 2; SQLite by default, PostgreSQL works too). Times are Unix seconds."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    """Declarative base of the monitoring tables."""


class Monitor(Base):
    """A page watched for changes, and where its alerts go."""

    __tablename__ = "monitors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    interval_s: Mapped[float] = mapped_column(Float, default=3600.0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    alert_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    webhook_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    last_checked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Snapshot(Base):
    """One check of a monitor: what the page looked like, and whether it changed."""

    __tablename__ = "snapshots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"), index=True)
    fetched_at: Mapped[float] = mapped_column(Float, index=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[bool] = mapped_column(Boolean, default=False)
    anomalous: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    triggered_by: Mapped[str] = mapped_column(String(20), default="schedule")


class Alert(Base):
    """A detected change, and how its delivery went."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"), index=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"))
    created_at: Mapped[float] = mapped_column(Float, index=True)
    summary: Mapped[str] = mapped_column(Text)
    emailed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    webhook_delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Analysis(Base):
    """The result of one run of the multi-step analysis."""

    __tablename__ = "analyses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    result_json: Mapped[str] = mapped_column(Text)


class DailyAggregate(Base):
    """Checks, changes and errors of one monitor on one UTC day."""

    __tablename__ = "daily_aggregates"
    __table_args__ = (UniqueConstraint("monitor_id", "day"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"), index=True)
    day: Mapped[str] = mapped_column(String(10))
    checks: Mapped[int] = mapped_column(Integer)
    changes: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    mean_size: Mapped[float] = mapped_column(Float)


class AnomalyBaseline(Base):
    """A monitor's fitted baseline of changes per bucket."""

    __tablename__ = "anomaly_baselines"
    monitor_id: Mapped[int] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True)
    mean_rate: Mapped[float] = mapped_column(Float)
    std_rate: Mapped[float] = mapped_column(Float)
    buckets: Mapped[int] = mapped_column(Integer)
    trained_at: Mapped[float] = mapped_column(Float)


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer (several worker processes)
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@cache
def engine_for(url: str) -> Engine:
    """One engine per URL per process; creates the tables when they do not exist."""
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    Base.metadata.create_all(engine)
    return engine


@cache
def sessions_for(url: str) -> sessionmaker[Any]:
    """A session factory bound to ``url``'s engine."""
    return sessionmaker(engine_for(url), expire_on_commit=False)
