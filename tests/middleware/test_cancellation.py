"""Cancellation of running tasks: ``is_cancelled()`` and termination after the grace period."""

from __future__ import annotations

from tests.apps.core_app import cooperative, events, slow, stubborn, tp
from tests.workers import InProcessWorker, StartWorker, wait_for


def test_a_running_task_that_returns_on_is_cancelled_ends_cancelled(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    from celery.result import AsyncResult

    worker_in_process(tp)
    handle = cooperative.enqueue(20)
    wait_for(lambda: events("start"), 20, "start")
    assert tp.cancel(handle.id) in ("started", "progress")  # running: the request is noted
    record = handle.wait(timeout=10)
    # It stopped on request: cancelled (reason "stopped"), what it returned kept; Celery's view says REVOKED
    assert events("noticed") and record.state == "cancelled" and record.fields["reason"] == "stopped"
    assert record.result() == "stopped early"
    assert str(AsyncResult(handle.id, app=tp.celery).state) == "REVOKED"


def test_a_task_that_never_looks_finishes_as_succeeded(worker_in_process: InProcessWorker, redis_url: str) -> None:
    worker_in_process(tp)
    handle = slow.enqueue(1.5, "oblivious")
    wait_for(lambda: events("start"), 20, "start")
    tp.cancel(handle.id)  # no is_cancelled() in its body, no terminate_after: it does its work
    record = handle.wait(timeout=10)
    assert record.state == "succeeded" and record.result() == "oblivious"


def test_a_running_task_is_terminated_after_the_grace_period(start_worker: StartWorker, redis_url: str) -> None:
    start_worker()
    handle = stubborn.enqueue(30)
    wait_for(lambda: events("start"), 20, "start")
    tp.cancel(handle.id, terminate_after=1)
    record = handle.wait(timeout=15)
    assert record.state == "cancelled" and not events("end")


def test_a_task_refused_at_start_as_cancelled_gets_celerys_revoked_meta(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    from celery.result import AsyncResult

    from taskplane.celery.backend import ResultBackend
    from tests.apps.core_app import mark

    handle = mark.enqueue("never")
    tp.cancel(handle.id)
    backend = tp.celery.backend
    assert isinstance(backend, ResultBackend)
    tp.storage.client.delete(backend.get_key_for_task(handle.id))  # only the worker can write it now
    worker_in_process(tp)
    mark.enqueue("after").wait(timeout=20)  # the worker took the cancelled message before this one
    assert not [event for event in events("mark") if event["tag"] == "never"]
    assert str(AsyncResult(handle.id, app=tp.celery).state) == "REVOKED"
