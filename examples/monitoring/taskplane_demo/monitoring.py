"""The monitoring logic the tasks run: checks, change detection, analysis, aggregates, retention, anomalies."""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import urlopen

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from taskplane_demo.models import Alert, Analysis, AnomalyBaseline, DailyAggregate, Monitor, Snapshot


class FetchError(Exception):
    """The monitored page could not be fetched (retried by the check tasks)."""


def fetch(url: str, timeout: float) -> tuple[int, bytes]:
    """GET ``url``; returns (status, body).

    Raises:
        FetchError: unreachable, timed out or answered 5xx.
    """
    try:
        with urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except HTTPError as exc:
        if exc.code >= 500:
            raise FetchError(f"{url} answered {exc.code}") from None
        return exc.code, b""
    except (URLError, TimeoutError, ConnectionError) as exc:
        raise FetchError(f"{url} unreachable: {getattr(exc, 'reason', exc)}") from None


def check(session: Session, monitor_id: int, timeout: float, triggered_by: str) -> tuple[Snapshot, Alert | None]:
    """Fetch the monitor's page, store a snapshot, and open an alert when the content changed.

    Raises:
        LookupError: no such monitor. FetchError: the page could not be fetched.
    """
    monitor = session.get(Monitor, monitor_id)
    if monitor is None:
        raise LookupError(f"monitor {monitor_id} does not exist")
    status, body = fetch(monitor.url, timeout)
    digest = hashlib.sha256(body).hexdigest()
    changed = monitor.last_hash is not None and digest != monitor.last_hash
    now = time.time()
    snapshot = Snapshot(
        monitor_id=monitor.id,
        fetched_at=now,
        status_code=status,
        content_hash=digest,
        size=len(body),
        changed=changed,
        triggered_by=triggered_by,
    )
    session.add(snapshot)
    monitor.last_checked_at = now
    monitor.last_hash = digest
    alert = None
    if changed and (monitor.alert_email or monitor.webhook_url):
        session.flush()
        alert = Alert(
            monitor_id=monitor.id,
            snapshot_id=snapshot.id,
            created_at=now,
            summary=f"{monitor.name} changed: {monitor.url} is now {len(body)} bytes (sha256 {digest[:12]})",
        )
        session.add(alert)
    session.commit()
    return snapshot, alert


def due_monitors(session: Session, now: float) -> list[int]:
    """Ids of active monitors whose interval has passed since their last check."""
    monitors = session.scalars(select(Monitor).where(Monitor.active.is_(True)).order_by(Monitor.id))
    return [m.id for m in monitors if m.last_checked_at is None or m.last_checked_at + m.interval_s <= now]


ANALYSIS_STEPS = ("load history", "change frequency", "size trend", "availability", "anomalies", "store result")


def analysis_step(session: Session, monitor_id: int, step: str, found: dict[str, Any]) -> None:
    """Run one step of the analysis, adding what it found to ``found``."""
    if step == "load history":
        rows = session.scalars(select(Snapshot).where(Snapshot.monitor_id == monitor_id).order_by(Snapshot.fetched_at))
        found["_snapshots"] = list(rows)
        found["checks"] = len(found["_snapshots"])
    elif step == "change frequency":
        snaps = found["_snapshots"]
        span = (snaps[-1].fetched_at - snaps[0].fetched_at) if len(snaps) > 1 else 0.0
        found["changes"] = sum(1 for s in snaps if s.changed)
        found["changes_per_hour"] = round(found["changes"] / (span / 3600), 2) if span else 0.0
    elif step == "size trend":
        sizes = [s.size for s in found["_snapshots"] if s.error is None]
        found["size_first"], found["size_last"] = (sizes[0], sizes[-1]) if sizes else (0, 0)
    elif step == "availability":
        snaps = found["_snapshots"]
        ok = sum(1 for s in snaps if s.status_code is not None and s.status_code < 400)
        found["availability"] = round(ok / len(snaps), 3) if snaps else None
    elif step == "anomalies":
        found["anomalous_checks"] = sum(1 for s in found["_snapshots"] if s.anomalous)
    elif step == "store result":
        result = {k: v for k, v in found.items() if not k.startswith("_")}
        session.add(Analysis(monitor_id=monitor_id, created_at=time.time(), result_json=json.dumps(result)))
        session.commit()


def aggregate_day(session: Session, day: str) -> int:
    """Fold the snapshots of UTC day ``YYYY-MM-DD`` into one row per monitor (replacing earlier rows)."""
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    rows = session.scalars(select(Snapshot).where(Snapshot.fetched_at >= start, Snapshot.fetched_at < start + 86400))
    per_monitor: dict[int, list[Snapshot]] = defaultdict(list)
    for snapshot in rows:
        per_monitor[snapshot.monitor_id].append(snapshot)
    session.execute(delete(DailyAggregate).where(DailyAggregate.day == day))
    for monitor_id, snaps in per_monitor.items():
        session.add(
            DailyAggregate(
                monitor_id=monitor_id,
                day=day,
                checks=len(snaps),
                changes=sum(1 for s in snaps if s.changed),
                errors=sum(1 for s in snaps if s.error is not None),
                mean_size=statistics.fmean(s.size for s in snaps),
            )
        )
    session.commit()
    return len(per_monitor)


def yesterday() -> str:
    """Yesterday's UTC date as ``YYYY-MM-DD``."""
    return (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")


def cleanup(session: Session, retention_days: float) -> dict[str, int]:
    """Delete snapshots, alerts and analyses older than the retention; returns how many of each."""
    cutoff = time.time() - retention_days * 86400
    removed = {
        "alerts": session.execute(delete(Alert).where(Alert.created_at < cutoff)).rowcount,  # type: ignore[attr-defined]
        "analyses": session.execute(delete(Analysis).where(Analysis.created_at < cutoff)).rowcount,  # type: ignore[attr-defined]
        "snapshots": session.execute(delete(Snapshot).where(Snapshot.fetched_at < cutoff)).rowcount,  # type: ignore[attr-defined]
    }
    session.commit()
    return {name: int(count or 0) for name, count in removed.items()}


def train_anomaly_model(session: Session, bucket_seconds: float, threshold: float) -> dict[str, int]:
    """Fit each monitor's baseline of changes per time bucket, and flag the checks in buckets far above it."""
    trained = flagged = 0
    for monitor_id in session.scalars(select(Monitor.id)):
        snaps = list(session.scalars(select(Snapshot).where(Snapshot.monitor_id == monitor_id)))
        if not snaps:
            continue
        first = min(s.fetched_at for s in snaps)
        buckets = int((max(s.fetched_at for s in snaps) - first) // bucket_seconds) + 1
        changes = Counter(int((s.fetched_at - first) // bucket_seconds) for s in snaps if s.changed)
        rates = [float(changes.get(b, 0)) for b in range(buckets)]
        mean = statistics.fmean(rates)
        std = statistics.pstdev(rates)
        session.merge(
            AnomalyBaseline(
                monitor_id=monitor_id, mean_rate=mean, std_rate=std, buckets=buckets, trained_at=time.time()
            )
        )
        trained += 1
        limit = mean + threshold * std
        hot = {b for b, rate in enumerate(rates) if std > 0 and rate > limit}
        for snapshot in snaps:
            anomalous = snapshot.changed and int((snapshot.fetched_at - first) // bucket_seconds) in hot
            flagged += int(anomalous and not snapshot.anomalous)
            snapshot.anomalous = anomalous or snapshot.anomalous
    session.commit()
    return {"monitors": trained, "flagged": flagged}
