"""The reference workload: competitive-intelligence monitoring, as taskplane tasks and schedules.

Run it with ``taskplane demo`` (everything on 127.0.0.1), or piece by piece::

    taskplane worker -A taskplane_demo.tasks:tp --profile interactive   # critical + high
    taskplane worker -A taskplane_demo.tasks:tp --profile batch         # normal + low
    taskplane scheduler -A taskplane_demo.tasks:tp
"""

from __future__ import annotations

import smtplib
import time
from typing import Any

from sqlalchemy.orm import Session

from taskplane import RateLimit, Retry, Taskplane, progress
from taskplane_demo import delivery, monitoring
from taskplane_demo.models import Alert, Monitor, sessions_for
from taskplane_demo.settings import database_url, demo_settings

tp = Taskplane("monitoring")
tp.profile("interactive", ["critical", "high"], concurrency=2)
tp.profile("batch", ["normal", "low"], concurrency=2)

settings = demo_settings()
FETCH_RETRY = Retry(max_retries=2, backoff=(5.0, 30.0), on=(monitoring.FetchError,))


def session() -> Session:
    """A database session (the engine is made once per worker process)."""
    return sessions_for(database_url(settings, tp.settings.data_dir))()  # type: ignore[no-any-return]


def _per_monitor(monitor_id: int, **_: Any) -> int:
    return monitor_id


def _check(monitor_id: int, triggered_by: str) -> dict[str, Any]:
    with session() as db:
        snapshot, alert = monitoring.check(db, monitor_id, settings.fetch_timeout, triggered_by)
    if alert is not None:
        process_alert_task.enqueue(alert.id)
    return {"monitor_id": monitor_id, "changed": snapshot.changed, "alert_id": alert.id if alert else None}


@tp.task(
    name="monitoring.check_monitor_task",
    queue="normal",
    rate_limit=RateLimit("10/m", key=_per_monitor),
    retry=FETCH_RETRY,
    unique_for=300,
)
def check_monitor_task(monitor_id: int) -> dict[str, Any]:
    """Fetch a monitored page, store a snapshot, and raise an alert when it changed (10/m per monitor)."""
    return _check(monitor_id, "schedule")


@tp.task(name="monitoring.check_monitor_user_triggered", queue="critical", retry=FETCH_RETRY)
def check_monitor_user_triggered(monitor_id: int) -> dict[str, Any]:
    """The same check, asked for by a user: critical, so it overtakes queued normal work."""
    return _check(monitor_id, "user")


@tp.task(name="monitoring.check_scheduled_monitors_task", queue="normal")
def check_scheduled_monitors_task() -> int:
    """Fan out one check per monitor that is due; returns how many were queued."""
    with session() as db:
        due = monitoring.due_monitors(db, time.time())
    for monitor_id in due:
        check_monitor_task.enqueue(monitor_id)
    return len(due)


@tp.task(
    name="monitoring.process_alert_task",
    queue="high",
    rate_limit="30/m",
    retry=Retry(on=(smtplib.SMTPException, OSError)),
)
def process_alert_task(alert_id: int) -> dict[str, Any]:
    """Deliver an alert: email now (SMTP), webhook through its own retried task."""
    with session() as db:
        alert = db.get(Alert, alert_id)
        if alert is None:
            raise LookupError(f"alert {alert_id} does not exist")
        monitor = db.get(Monitor, alert.monitor_id)
        assert monitor is not None
        if monitor.alert_email and alert.emailed_at is None:
            delivery.send_email(
                settings.smtp_host,
                settings.smtp_port,
                settings.alert_from,
                monitor.alert_email,
                f"[monitor] {monitor.name} changed",
                alert.summary,
                settings.fetch_timeout,
            )
            alert.emailed_at = time.time()
            db.commit()
        webhook = bool(monitor.webhook_url)
    if webhook:
        send_alert_webhook.enqueue(alert_id)
    return {"alert_id": alert_id, "emailed": alert.emailed_at is not None, "webhook_queued": webhook}


@tp.task(
    name="monitoring.send_alert_webhook",
    queue="high",
    rate_limit="20/m",
    retry=Retry(
        max_retries=len(settings.webhook_backoff),
        backoff=settings.webhook_backoff,
        jitter=True,
        on=(delivery.WebhookTemporaryError,),
        never_on=(delivery.WebhookRejectedError,),
    ),
)
def send_alert_webhook(alert_id: int) -> int:
    """POST the alert, HMAC-signed with an idempotency key; 5xx and timeouts retry 1m/5m/15m, then dead-letter."""
    with session() as db:
        alert = db.get(Alert, alert_id)
        if alert is None:
            raise LookupError(f"alert {alert_id} does not exist")
        monitor = db.get(Monitor, alert.monitor_id)
        assert monitor is not None and monitor.webhook_url
        payload = {
            "alert_id": alert.id,
            "monitor": {"id": monitor.id, "name": monitor.name, "url": monitor.url},
            "summary": alert.summary,
            "created_at": alert.created_at,
        }
        status = delivery.post_webhook(
            monitor.webhook_url, payload, settings.webhook_secret, f"alert-{alert.id}", settings.webhook_timeout
        )
        alert.webhook_delivered_at = time.time()
        db.commit()
    return status


@tp.task(name="monitoring.run_analysis_task", queue="normal", rate_limit="5/m")
def run_analysis_task(monitor_id: int) -> dict[str, Any]:
    """A multi-step analysis of a monitor's history, reporting progress after each step."""
    found: dict[str, Any] = {"monitor_id": monitor_id}
    total = len(monitoring.ANALYSIS_STEPS)
    with session() as db:
        for number, step in enumerate(monitoring.ANALYSIS_STEPS, start=1):
            monitoring.analysis_step(db, monitor_id, step, found)
            progress(number, total, step=step)
            time.sleep(settings.analysis_step_seconds)
    return {k: v for k, v in found.items() if not k.startswith("_")}


@tp.task(name="monitoring.aggregate_snapshots_task", queue="low")
def aggregate_snapshots_task(day: str | None = None) -> dict[str, Any]:
    """Fold a UTC day's snapshots (default: yesterday) into daily aggregates per monitor."""
    day = day or monitoring.yesterday()
    with session() as db:
        return {"day": day, "monitors": monitoring.aggregate_day(db, day)}


@tp.task(name="monitoring.cleanup_old_data_task", queue="low")
def cleanup_old_data_task(retention_days: float | None = None) -> dict[str, int]:
    """Delete data older than the retention (default from the settings: 30 days)."""
    with session() as db:
        return monitoring.cleanup(db, retention_days or settings.retention_days)


@tp.task(name="monitoring.train_anomaly_model_task", queue="low")
def train_anomaly_model_task() -> dict[str, int]:
    """Fit a per-monitor baseline of change rates and flag anomalous checks."""
    with session() as db:
        return monitoring.train_anomaly_model(db, settings.anomaly_bucket_seconds, settings.anomaly_threshold)


tp.periodic(check_scheduled_monitors_task, every=settings.scan_every, name="scan-monitors")
tp.periodic(aggregate_snapshots_task, cron="0 2 * * *", name="aggregate-daily")
tp.periodic(cleanup_old_data_task, cron="0 3 * * *", name="cleanup-daily")
tp.periodic(train_anomaly_model_task, cron="0 4 * * 0", name="train-weekly")
