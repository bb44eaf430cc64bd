"""Cancellation, crashes, poison and bad messages, and graceful shutdown -- all with real processes."""

from __future__ import annotations

import base64
import json
import time

from tests.apps.core_app import add, cooperative, events, hard_limit, mark, slow, stubborn, suicide, tp
from tests.integration.workers import wait_for


def test_cancel_before_start_survives_a_worker_restart(start_worker, redis_url):
    worker = start_worker()
    worker.stop()
    # Given a task cancelled while no worker runs
    doomed = mark.enqueue("doomed")
    assert tp.cancel(doomed.id) == "cancelled"
    after = mark.enqueue("after")
    # When a new worker starts
    start_worker()
    after.wait(timeout=20)
    # Then the cancelled task never ran
    assert [e["tag"] for e in events("mark")] == ["after"]
    assert tp.status(doomed.id).state == "cancelled"


def test_a_running_task_sees_is_cancelled(start_worker, redis_url):
    start_worker()
    handle = cooperative.enqueue(20)
    wait_for(lambda: events("start"), 20, "start")
    tp.cancel(handle.id)
    record = handle.wait(timeout=10)
    assert events("noticed") and record.result() == "stopped early"


def test_a_running_task_is_terminated_after_the_grace_period(start_worker, redis_url):
    start_worker()
    handle = stubborn.enqueue(30)
    wait_for(lambda: events("start"), 20, "start")
    tp.cancel(handle.id, terminate_after=1)
    record = handle.wait(timeout=15)
    assert record.state == "cancelled" and not events("end")


def test_sigkill_of_a_worker_mid_task_the_task_completes_on_another(start_worker, redis_url):
    lease = {"TASKPLANE_LEASE_TIMEOUT": "6"}
    doomed = start_worker(env=lease)
    handle = slow.enqueue(2, "crash-me")
    wait_for(lambda: events("start"), 20, "start on the first worker")
    doomed.kill()
    survivor = start_worker(env=lease)
    record = handle.wait(timeout=40)
    assert record.state == "succeeded"
    assert record.fields["worker"] == survivor.hostname
    assert len(events("end")) == 1  # ran to completion exactly once


def test_a_long_task_on_a_live_worker_never_runs_twice(start_worker, redis_url):
    lease = {"TASKPLANE_LEASE_TIMEOUT": "3"}
    start_worker(env=lease)
    start_worker(env=lease)
    handle = slow.enqueue(8, "long")  # well past the 3 s lease: renewals must keep it
    handle.wait(timeout=40)
    assert len(events("start")) == 1


def test_a_task_that_kills_its_process_is_dead_after_3_deliveries(start_worker, redis_url):
    start_worker()
    handle = suicide.enqueue()
    record = handle.wait(timeout=60)
    assert record.state == "dead" and record.fields["reason"] == "poison"
    assert len(events("suicide")) == 3
    letter = tp.dead_letters.get(handle.id)
    assert letter is not None and letter.reason == "poison"
    assert add.enqueue(2, 2).result(timeout=20) == 4  # the worker kept running


def test_unknown_tasks_and_malformed_messages_are_dead_lettered_and_the_worker_keeps_running(start_worker, redis_url):
    start_worker()
    client = tp.storage.client
    # An unknown task name, sent through Celery directly
    unknown_id = tp.celery.send_task("no.such.task", [1], queue="normal").id
    # Items that are not kombu messages at all
    client.lpush("normal", "this is not json")
    client.lpush("normal", json.dumps({"hello": "world"}))
    # A kombu envelope whose body is not valid JSON
    envelope = {
        "body": base64.b64encode(b"{not json").decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"id": "bad-body", "task": "t.add"},
        "properties": {
            "body_encoding": "base64",
            "delivery_tag": "tag-1",
            "delivery_info": {"exchange": "normal", "routing_key": "normal"},
            "priority": 0,
        },
    }
    client.lpush("normal", json.dumps(envelope))
    # Then the worker still runs a real task
    assert add.enqueue(1, 2).result(timeout=20) == 3
    letters = wait_for(lambda: len(tp.dead_letters.find()) >= 4 and tp.dead_letters.find(), 20, "4 dead letters")
    reasons = sorted(letter.reason for letter in letters)
    assert reasons == ["malformed", "malformed", "malformed", "unknown_task"], reasons
    unknown = tp.dead_letters.get(unknown_id)
    assert unknown is not None and unknown.name == "no.such.task" and unknown.raw


def test_a_hard_time_limit_sends_the_task_to_the_dead_letters(start_worker, redis_url):
    start_worker()
    record = hard_limit.enqueue().wait(timeout=30)
    assert record.state == "dead" and record.fields["reason"] == "time_limit"
    assert tp.dead_letters.get(record.id).exception_type == "TimeLimitExceeded"


def test_sigterm_drains_within_the_timeout_and_loses_nothing(start_worker, redis_url):
    # Given a worker with a 3 s shutdown bound running a short and a long task
    worker = start_worker(concurrency=2, env={"TASKPLANE_SHUTDOWN_TIMEOUT": "3"})
    short = slow.enqueue(1, "short")
    long = slow.enqueue(12, "long")
    wait_for(lambda: len(events("start")) == 2, 20, "both started")
    # When it gets SIGTERM
    began = time.monotonic()
    worker.terminate()
    worker.process.wait(30)
    elapsed = time.monotonic() - began
    # Then it exits within the bound (plus start-up slack), the short task finished,
    # and the long one went back to its queue, to finish on the next worker
    assert elapsed < 3 + 5, elapsed
    assert short.wait(timeout=1).state == "succeeded"
    assert tp.status(long.id).state != "succeeded"
    start_worker()
    assert long.wait(timeout=40).state == "succeeded"


def test_progress_reaches_the_record_and_the_final_value_is_kept(start_worker, redis_url):
    from tests.apps.core_app import steps

    start_worker()
    record = steps.enqueue(500).wait(timeout=20)
    assert record.state == "succeeded"
    assert record.fields["progress_current"] == 500 and record.fields["progress_total"] == 500
    assert record.fields["progress_step"] == "step 500"
    meta = tp.celery.AsyncResult(record.id)
    assert meta.state == "SUCCESS"
