"""Worker faults with real processes: restarts, SIGKILL, a task that kills its process, SIGTERM drain."""

from __future__ import annotations

import itertools
import os
import signal
import time

from tests.apps.core_app import add, events, mark, paced, slow, suicide, tp
from tests.workers import StartWorker, wait_for


def test_cancel_before_start_survives_a_worker_restart(start_worker: StartWorker, redis_url: str) -> None:
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
    assert tp.handle(doomed.id).record().state == "cancelled"


def test_sigkill_of_a_worker_mid_task_the_task_completes_on_another(start_worker: StartWorker, redis_url: str) -> None:
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


def test_a_long_task_on_a_live_worker_never_runs_twice(start_worker: StartWorker, redis_url: str) -> None:
    lease = {"TASKPLANE_LEASE_TIMEOUT": "3"}
    start_worker(env=lease)
    start_worker(env=lease)
    handle = slow.enqueue(8, "long")  # well past the 3 s lease: renewals must keep it
    handle.wait(timeout=40)
    assert len(events("start")) == 1


def test_a_task_that_kills_its_process_is_dead_after_3_deliveries(start_worker: StartWorker, redis_url: str) -> None:
    start_worker()
    handle = suicide.enqueue()
    record = handle.wait(timeout=60)
    assert record.state == "dead" and record.fields["reason"] == "poison"
    assert len(events("suicide")) == 3
    letter = tp.dead_letters.get(handle.id)
    assert letter is not None and letter.reason == "poison"
    assert add.enqueue(2, 2).result(timeout=20) == 4  # the worker kept running


def test_sigterm_drains_within_the_timeout_and_loses_nothing(start_worker: StartWorker, redis_url: str) -> None:
    # Given a worker with a 3 s shutdown bound running a short task, a long one and one reporting progress
    worker = start_worker(concurrency=3, env={"TASKPLANE_SHUTDOWN_TIMEOUT": "3"})
    short = slow.enqueue(1, "short")
    long = slow.enqueue(8, "long")
    reporting = paced.enqueue(40, 0.2)
    wait_for(lambda: len(events("start")) == 2, 20, "both started")
    wait_for(lambda: reporting.record().state == "progress", 20, "the progress report")
    # When it gets SIGTERM
    began = time.monotonic()
    worker.terminate()
    worker.process.wait(30)
    elapsed = time.monotonic() - began
    # Then it exits within the bound (plus start-up slack), the short task finished,
    # and the long one went back to its queue, to finish on the next worker
    assert elapsed < 3 + 5, elapsed
    assert worker.process.returncode == 0  # a bounded stop is a planned stop, not a failure
    assert short.wait(timeout=1).state == "succeeded"
    # ...their records say so: queued again, that delivery not counted, no worker holding them, no stale progress
    for returned in (long.record(), reporting.record()):
        assert returned.state == "queued", returned.fields
        assert returned.fields.get("deliveries", 0) == 0 and not returned.fields.get("worker"), returned.fields
        assert not [key for key in returned.fields if key.startswith("progress_")], returned.fields
    assert tp.storage.client.llen(tp.storage.keys.queue("normal")) == 2
    start_worker()
    assert long.wait(timeout=40).state == "succeeded"
    assert reporting.wait(timeout=40).state == "succeeded"


def test_graceful_restarts_during_a_long_task_do_not_make_it_poison(start_worker: StartWorker, redis_url: str) -> None:
    # Given a task longer than the shutdown bound of its workers
    handle = slow.enqueue(4, "long")
    bounded = {"TASKPLANE_SHUTDOWN_TIMEOUT": "0.5"}
    # When four workers in turn start it and are stopped gracefully (more than max_deliveries = 3)
    for restart in range(1, 5):
        worker = start_worker(env=bounded)
        wait_for(lambda: len(events("start")) >= restart, 20, f"start number {restart}")  # noqa: B023
        worker.stop()
    # Then the fifth delivery runs it to the end: returned deliveries are not crashes
    start_worker()
    record = handle.wait(timeout=30)
    assert record.state == "succeeded", record.fields
    assert len(events("start")) == 5 and tp.dead_letters.find() == []


def test_sigterm_to_the_whole_process_group_drains_like_one_to_the_main_process(
    start_worker: StartWorker, redis_url: str
) -> None:
    # Given a prefork worker running a task (systemd and some container runtimes signal the whole group)
    worker = start_worker(concurrency=2, env={"TASKPLANE_SHUTDOWN_TIMEOUT": "10"})
    handle = slow.enqueue(3, "group")
    wait_for(lambda: events("start"), 20, "the task to start")
    # When every process of the worker gets SIGTERM at once
    os.killpg(worker.process.pid, signal.SIGTERM)
    worker.process.wait(30)
    # Then the running task finished on that worker (it was not killed and run again) and the worker exited
    record = handle.wait(timeout=5)
    assert record.state == "succeeded", record.fields
    assert record.fields["deliveries"] == 1 and len(events("start")) == 1
    assert worker.process.returncode == 0


def test_a_recycled_pool_process_is_replaced_at_once(start_worker: StartWorker, redis_url: str) -> None:
    # Given a worker with one process, recycled after every 2 tasks (max_tasks_per_child)
    start_worker(concurrency=1, env={"TASKPLANE_MAX_TASKS_PER_CHILD": "2"})
    # When it runs 12 tasks: 6 processes, 5 replacements
    handles = [mark.enqueue(f"r{i}") for i in range(12)]
    for handle in handles:
        handle.wait(timeout=60)
    marks = events("mark")
    pids = list(dict.fromkeys(event["pid"] for event in marks))
    assert len(pids) == 6, pids
    # Then each replacement takes a fraction of a second: the exiting process does not wait out a SIGTERM
    # decision (0.5 s), and its exit is not left to the pool's 5-second timer (celery/celery#9588)
    gaps = [
        min(e["at"] for e in marks if e["pid"] == new) - max(e["at"] for e in marks if e["pid"] == old)
        for old, new in itertools.pairwise(pids)
    ]
    assert sorted(gaps)[len(gaps) // 2] < 0.45, gaps
    assert max(gaps) < 2.5, gaps
