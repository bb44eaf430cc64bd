"""``taskplane queues purge NAME``: the queue's waiting messages (ready and delayed) are gone, their records say
cancelled and Celery's result meta REVOKED; ``celery purge`` would leave the records saying queued."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from celery.result import AsyncResult

from tests.apps.celery_style.celery_app import tp
from tests.apps.celery_style.tasks import notify, report
from tests.cli_output import error_lines

APP = "tests.apps.celery_style.celery_app:tp"


def test_purge_empties_the_queue_and_cancels_the_records(redis_url: str) -> None:
    ready = [report.delay(f"r{i}") for i in range(5)]
    urgent = report.apply_async(("urgent",), priority=0)
    later = report.apply_async(("later",), countdown=600)
    elsewhere = notify.delay(1)  # another queue: untouched
    assert tp.queues.purge("reports") == 7
    assert tp.queues.lengths(["reports"]) == {"reports": 0}
    assert tp.stores.delayed.counts(["reports"]) == {"reports": 0}
    for handle in (*ready, urgent, later):
        assert tp.handle(handle.id).record().state == "cancelled"
        assert str(AsyncResult(handle.id).state) == "REVOKED"  # Celery's view agrees: a waiting get() ends
    assert tp.handle(elsewhere.id).record().state == "queued"
    assert str(AsyncResult(elsewhere.id).state) == "PENDING"
    assert tp.queues.lengths(["normal"]) == {"normal": 1}


def test_a_purge_cut_short_is_finished_by_the_next(redis_url: str) -> None:
    handles = [report.delay(f"r{i}") for i in range(3)]
    # A purge that took the messages out and stopped before marking their records
    tp.stores.queues.take_for_purge("reports")
    assert tp.queues.lengths(["reports"]) == {"reports": 0}
    assert tp.queues.purge("reports") == 3
    assert all(tp.handle(h.id).record().state == "cancelled" for h in handles)


def purge_cli(repo_root: Path, queue: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "taskplane", "queues", "purge", queue, "-A", APP, "-f"]
    return subprocess.run(argv, cwd=repo_root, capture_output=True, text=True, timeout=60)


def test_the_cli_purges_with_force_and_refuses_an_unknown_queue(repo_root: Path, redis_url: str) -> None:
    report.delay("cli")
    done = purge_cli(repo_root, "reports")
    assert done.returncode == 0, done.stderr
    assert "purged 1 message(s) from reports" in done.stdout
    unknown = purge_cli(repo_root, "nope")
    assert unknown.returncode != 0 and len(error_lines(unknown.stderr)) == 1 and "nope" in unknown.stderr
