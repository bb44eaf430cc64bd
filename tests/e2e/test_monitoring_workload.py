"""The reference workload's tasks in a real worker against their real local servers (HTTP sites, SMTP,
webhook receiver) and a real SQLite database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from taskplane_demo.delivery import verify
from taskplane_demo.models import Alert, Analysis, AnomalyBaseline, DailyAggregate, Monitor, Snapshot, sessions_for
from taskplane_demo.servers import MailServer, Sites, WebhookReceiver
from taskplane_demo.tasks import (
    aggregate_snapshots_task,
    check_monitor_task,
    check_monitor_user_triggered,
    check_scheduled_monitors_task,
    cleanup_old_data_task,
    run_analysis_task,
    send_alert_webhook,
    tp,
    train_anomaly_model_task,
)

from taskplane import TaskHandle, TaskRecord
from tests.workers import StartWorker, wait_for

SECRET = "test-secret"
APP = "taskplane_demo.tasks:tp"


class Stack:
    def __init__(self, tmp_path: Path) -> None:
        self.sites = Sites(6)
        self.hooks = WebhookReceiver(SECRET)
        self.mail = MailServer()
        self.db_url = f"sqlite:///{tmp_path / 'monitoring.sqlite'}"
        self.env = {
            "TASKPLANE_DEMO_DATABASE_URL": self.db_url,
            "TASKPLANE_DEMO_SMTP_PORT": str(self.mail.port),
            "TASKPLANE_DEMO_WEBHOOK_SECRET": SECRET,
            "TASKPLANE_DEMO_WEBHOOK_BACKOFF": "[0.3, 0.6, 0.9]",
            "TASKPLANE_DEMO_ANALYSIS_STEP_SECONDS": "0.2",
            "TASKPLANE_DEMO_ANOMALY_BUCKET_SECONDS": "1",
        }
        with self.db() as db:
            for number in range(1, 7):
                hook = {1: "ok", 2: "broken", 3: "ok"}.get(number)
                db.add(
                    Monitor(
                        id=number,
                        name=f"competitor-{number}",
                        url=self.sites.url(number),
                        interval_s=60,
                        alert_email="alerts@example.test" if number == 1 else None,
                        webhook_url=self.hooks.url(hook) if hook else None,
                    )
                )
            db.commit()

    def db(self) -> Session:
        session: Session = sessions_for(self.db_url)()
        return session

    def stop(self) -> None:
        for server in (self.sites, self.hooks, self.mail):
            server.stop()


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(tmp_path)
    yield running
    running.stop()


def finished(handle: TaskHandle, timeout: float = 30.0) -> TaskRecord:
    record: TaskRecord = wait_for(
        lambda: handle.record().done and handle.record(), timeout=timeout, what=f"{handle.id} to finish"
    )
    return record


def test_a_change_is_mailed_and_posted_with_a_valid_signature(stack: Stack, start_worker: StartWorker) -> None:
    start_worker(app=APP, concurrency=2, env=stack.env)
    first = finished(check_monitor_task.enqueue(1))
    assert first.state == "succeeded" and first.result()["changed"] is False  # the first look is the baseline
    stack.sites.change(1)
    second = finished(check_monitor_user_triggered.enqueue(1))
    assert second.queue == "critical" and second.result()["changed"] is True
    alert_id = second.result()["alert_id"]

    mail = wait_for(lambda: stack.mail.inbox, what="the alert email")[0]
    assert mail.recipients == ["alerts@example.test"] and mail.subject == "[monitor] competitor-1 changed"
    assert "competitor-1 changed" in mail.body

    key = f"alert-{alert_id}"
    body = wait_for(lambda: stack.hooks.processed.get(key), what="the webhook")
    [delivery] = [d for d in stack.hooks.deliveries if d.idempotency_key == key]
    assert delivery.signature_ok and delivery.status == 200 and delivery.path == "/hooks/ok"
    assert json.loads(body)["alert_id"] == alert_id and json.loads(body)["monitor"]["name"] == "competitor-1"
    assert not verify("another-secret", "0", body, "sha256=00")  # the receiver's check is real
    with stack.db() as db:
        alert = db.get(Alert, alert_id)
        assert alert is not None and alert.emailed_at is not None

        def delivered() -> object:
            fresh = db.get(Alert, alert_id, populate_existing=True)
            return fresh is not None and fresh.webhook_delivered_at

        wait_for(delivered, what="delivered mark")


def test_a_failing_endpoint_drives_retries_into_the_dead_letters(stack: Stack, start_worker: StartWorker) -> None:
    start_worker(app=APP, concurrency=2, env=stack.env)
    finished(check_monitor_task.enqueue(2))
    stack.sites.change(2)
    changed = finished(check_monitor_user_triggered.enqueue(2))
    key = f"alert-{changed.result()['alert_id']}"
    letter = wait_for(lambda: tp.dead_letters.find(limit=5), timeout=45, what="the dead letter")[0]
    assert letter.name == send_alert_webhook.name and letter.reason == "retries_exhausted"
    assert letter.attempts == 4 and letter.exception_type == "WebhookTemporaryError"
    assert "answered 503" in letter.exception_message
    attempts = [d for d in stack.hooks.deliveries if d.idempotency_key == key]
    assert len(attempts) == 4 and all(d.status == 503 and d.signature_ok for d in attempts)  # same key each time
    # The letter is written before the record (two writes, FailurePath.bury): wait for the record too
    record = wait_for(lambda: (found := tp.handle(letter.id).record()).state == "dead" and found, what="dead record")
    assert record.fields["retries"] == 3


def test_fan_out_analysis_progress_and_the_nightly_jobs(stack: Stack, start_worker: StartWorker) -> None:
    start_worker(app=APP, concurrency=2, env=stack.env)
    fanned = finished(check_scheduled_monitors_task.enqueue())
    assert fanned.result() == 6  # every monitor is due: none was checked yet
    checks = tp.tasks(name=check_monitor_task.name, limit=50).records
    assert len(checks) == 6
    assert all(finished(tp.handle(record.id)).state == "succeeded" for record in checks)
    assert finished(check_scheduled_monitors_task.enqueue()).result() == 0  # none is due again yet
    stack.sites.change(3)
    finished(check_monitor_user_triggered.enqueue(3))

    analysis = run_analysis_task.enqueue(3)
    seen = set()

    def progressed() -> bool:
        record = analysis.record()
        if "progress_current" in record.fields:
            seen.add(int(record.fields["progress_current"]))
        return record.done

    wait_for(progressed, timeout=30, what="the analysis")
    done = analysis.record()
    assert done.state == "succeeded" and done.fields["progress_total"] == 6 and len(seen) >= 3
    assert done.result()["checks"] == 2 and done.result()["changes"] == 1 and done.result()["availability"] == 1.0

    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert finished(aggregate_snapshots_task.enqueue(today)).result() == {"day": today, "monitors": 6}
    trained = finished(train_anomaly_model_task.enqueue()).result()
    assert trained["monitors"] == 6
    with stack.db() as db:
        assert db.scalar(select(Analysis.monitor_id)) == 3
        row = db.scalars(select(DailyAggregate).where(DailyAggregate.monitor_id == 3)).one()
        assert (row.checks, row.changes) == (2, 1)
        assert len(db.scalars(select(AnomalyBaseline)).all()) == 6
    assert finished(cleanup_old_data_task.enqueue(0.000001)).result()["snapshots"] == 7
    with stack.db() as db:
        assert db.scalars(select(Snapshot)).all() == []


def test_a_user_triggered_check_overtakes_queued_normal_checks(stack: Stack, start_worker: StartWorker) -> None:
    normal = [check_monitor_task.enqueue(number) for number in range(1, 6)]
    urgent = check_monitor_user_triggered.enqueue(6)
    start_worker(app=APP, concurrency=1, env=stack.env)
    records = [finished(handle) for handle in [*normal, urgent]]
    assert all(record.state == "succeeded" for record in records)
    started = sorted(records, key=lambda record: record.fields["started_ms"])
    assert started[0].id == urgent.id  # enqueued last, run first
