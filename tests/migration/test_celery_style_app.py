"""The Celery-style app (tests/apps/celery_style) under ``taskplane worker``: each Celery behaviour a team relies
on, mapped onto taskplane's, with real worker processes and the real server."""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import httpx
import pytest
import redis
from celery.exceptions import TaskRevokedError
from celery.result import AsyncResult
from kombu.exceptions import OperationalError

from taskplane.api import create_app
from taskplane.stores.records import TaskRecord
from tests.api.test_api import read_events
from tests.api_server import serve_in_thread
from tests.apps.celery_style.celery_app import tp
from tests.apps.celery_style.tasks import EVENTS, crunch, fetch_feed, flaky, notify, sleepy
from tests.workers import StartWorker, wait_for

APP = "tests.apps.celery_style.celery_app:tp"


@pytest.fixture(autouse=True)
def the_process_app() -> None:
    """This team's app is the process's Celery app, as in their service (a test that ran before in this process
    may have built another Taskplane, which became the default then)."""
    tp.celery.set_default()
    tp.celery.set_current()


def status(task_id: str) -> TaskRecord:
    record = tp.status(task_id)
    assert record is not None, task_id
    return record


def events(redis_url: str, kind: str) -> list[dict[str, Any]]:
    found = [json.loads(item) for item in redis.Redis.from_url(redis_url).lrange(EVENTS, 0, -1)]
    return [event for event in found if event["kind"] == kind]


def test_autoretry_with_backoff_ends_in_the_dead_letters(redis_url: str, start_worker: StartWorker) -> None:
    start_worker(app=APP)
    result = fetch_feed.delay("https://feeds.example.test/a")
    record = wait_for(lambda: (r := status(result.id)).done and r, 30, "the task to end")
    assert record.state == "dead" and record.fields["reason"] == "retries_exhausted"
    runs = events(redis_url, "fetch_feed")
    assert [run["retries"] for run in runs] == [0, 1, 2]  # max_retries=2: three attempts
    gaps = [later["at"] - earlier["at"] for earlier, later in itertools.pairwise(runs)]
    assert all(0.9 < gap < 5 for gap in gaps), gaps  # retry_backoff: 1 s, then 2 s capped at retry_backoff_max=1
    letter = tp.dead_letters.get(result.id)
    assert letter is not None and letter.exception_type == "ConnectionError" and letter.attempts == 3


def test_self_retry_runs_again_and_the_record_says_retrying_in_between(start_worker: StartWorker) -> None:
    start_worker(app=APP)
    result = flaky.delay(2)
    assert result.get(timeout=30) == 2  # a plain Celery AsyncResult.get()
    record = status(result.id)
    assert record.state == "succeeded" and record.fields["attempts"] == 3
    assert record.fields["error_type"] == "ValueError"  # kept from the last retry


def test_update_state_progress_reaches_the_record_and_the_event_stream(
    redis_url: str, start_worker: StartWorker
) -> None:
    token = tp.api_keys.create("reader", ["read"])[1]
    with serve_in_thread(create_app(tp)) as base_url:
        result = crunch.delay(4, 0.3)
        collected: list[dict[str, Any]] = []
        opened = threading.Event()

        def follow() -> None:
            url = f"{base_url}/api/v1/tasks/{result.id}/events"
            with httpx.stream("GET", url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as response:
                collected.extend(read_events(response, opened))

        follower = threading.Thread(target=follow)
        follower.start()
        assert opened.wait(30)
        start_worker(app=APP)
        seen = wait_for(lambda: (r := status(result.id)).state == "progress" and r, 30, "a PROGRESS in the record")
        assert seen.fields["progress_total"] == 100 and seen.fields["progress_message"] == "crunching"
        assert seen.fields["progress_step"].startswith("step ") and "rows" in json.loads(seen.fields["progress_meta"])
        assert AsyncResult(result.id).info["current_step"].startswith("step ")  # Celery's view, the user's meta
        follower.join(60)
    steps = [e["data"].get("progress_step") for e in collected if e["data"].get("state") == "progress"]
    assert steps and steps == sorted(set(steps)), steps
    assert collected[-1]["data"]["state"] == "succeeded"


def test_revoke_is_a_cancellation_that_survives_a_worker_restart(redis_url: str, start_worker: StartWorker) -> None:
    worker = start_worker(app=APP)
    waiting = sleepy.apply_async((0.1,), countdown=2)
    AsyncResult(waiting.id).revoke()
    assert status(waiting.id).state == "cancelled"
    assert str(AsyncResult(waiting.id).state) == "REVOKED"
    worker.stop()
    start_worker(app=APP)  # a new worker: Celery's in-memory revoked set would be gone
    probe = notify.delay(1)
    probe.get(timeout=30)
    wait_for(lambda: tp.storage.client.zcard(tp.storage.keys.delayed("normal")) == 0, 10, "the countdown to pass")
    assert status(waiting.id).state == "cancelled"
    assert not [e for e in events(redis_url, "sleepy") if e["task_id"] == waiting.id]


def test_revoke_with_terminate_stops_a_running_task(redis_url: str, start_worker: StartWorker) -> None:
    start_worker(app=APP)
    running = sleepy.delay(30)
    wait_for(lambda: events(redis_url, "sleepy"), 30, "the task to start")
    running.revoke(terminate=True)
    record = wait_for(lambda: (r := status(running.id)).done and r, 20, "the task to be terminated")
    assert record.state == "cancelled"
    with pytest.raises(TaskRevokedError):  # Celery's view: REVOKED
        AsyncResult(running.id).get(timeout=10)


def test_a_bare_async_result_finds_the_app_in_any_thread(start_worker: StartWorker) -> None:
    start_worker(app=APP)
    task_id = notify.delay(7).id
    answers: list[Any] = []
    reader = threading.Thread(target=lambda: answers.append(AsyncResult(task_id).get(timeout=30)))
    reader.start()
    reader.join(40)
    assert answers == [7]
    assert status(task_id).state == "succeeded"  # a @shared_task with a record


def test_celery_declared_tasks_are_queued_by_name_from_the_cli(repo_root: Any, start_worker: StartWorker) -> None:
    import subprocess
    import sys

    start_worker(app=APP)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "taskplane",
            "enqueue",
            "tests.apps.celery_style.tasks.notify",
            "-A",
            APP,
            "--args",
            "[3]",
            "--wait",
            "--timeout",
            "30",
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "3"


def test_revoke_with_reply_returns_the_workers_replies(redis_url: str, start_worker: StartWorker) -> None:
    worker = start_worker(app=APP)

    # A broadcast reaches the workers whose control queue is bound when it is sent: wait until it answers
    def answers() -> bool:
        try:
            return bool(tp.celery.control.ping(destination=[worker.hostname], timeout=1))
        except (redis.ConnectionError, OperationalError):  # a pooled connection an earlier test's server closed
            return False

    wait_for(answers, 60, "the worker's control")
    waiting = sleepy.apply_async((0.1,), countdown=30)
    replies = tp.celery.control.revoke(waiting.id, reply=True, timeout=30, destination=[worker.hostname])
    assert replies and worker.hostname in replies[0], worker.log_path.read_text()[-3000:]  # the broadcast, answered
    assert status(waiting.id).state == "cancelled"  # and taskplane's cancellation, kept in Redis


def test_a_task_whose_expiry_passed_ends_cancelled_expired(redis_url: str, start_worker: StartWorker) -> None:
    import time

    late = notify.apply_async((1,), expires=0.5)
    time.sleep(1.0)  # it expires before any worker takes it
    start_worker(app=APP)
    record = wait_for(lambda: (r := status(late.id)).done and r, 30, "the expired task to be refused")
    assert record.state == "cancelled" and record.fields["reason"] == "expired"
    assert str(AsyncResult(late.id).state) == "REVOKED"  # Celery's view, as plain Celery's
    # It is kept as a dead letter with its arguments, and a requeue runs it (without the expiry)
    letter = tp.dead_letters.get(late.id)
    assert letter is not None and letter.reason == "expired" and letter.args == [1], letter
    assert "passed before a worker ran it" in letter.exception_message
    tp.dead_letters.requeue(ids=[late.id])
    again = wait_for(lambda: (r := status(late.id)).done and r, 30, "the requeued task to run")
    assert again.state == "succeeded" and again.result() == 1


def test_a_task_replaced_again_and_again_is_no_poison_message(redis_url: str, start_worker: StartWorker) -> None:
    from tests.apps.celery_style.tasks import replaced

    start_worker(app=APP)
    result = replaced.delay(5)  # more replacements than TASKPLANE_MAX_DELIVERIES (3) deliveries of one id
    assert result.get(timeout=30) == 5
    record = wait_for(lambda: (r := status(result.id)).done and r, 30, "the last replacement to finish")
    assert record.state == "succeeded" and record.fields["deliveries"] == 1, record.fields
    assert not tp.dead_letters.find()
