"""What the dashboard reads, against a real server: an id-prefix search, a search that stops at its scan
budget and hands out a cursor, dead letters at a deep offset and their counts, the per-minute history,
a schedule's firing log, running tasks per queue."""

from __future__ import annotations

import time

import httpx
import pytest

from taskplane import Taskplane
from taskplane.api import create_app
from taskplane.core.protocol import DeadReason, Metric
from taskplane.stores import record_search
from taskplane.stores.dead_letters import DeadFilter
from taskplane.stores.metrics import MetricChanges
from tests.api_server import serve_in_thread
from tests.workers import StartWorker, wait_for


def test_id_prefix_search_reads_only_matching_records(redis_url: str) -> None:
    tp = Taskplane("t")

    @tp.task(name="x.any")
    def any_task(i: int) -> None: ...

    made = [any_task.enqueue(i).id for i in range(60)]
    prefix = made[17][:3]
    expected = {task_id for task_id in made if task_id.startswith(prefix)}
    found = tp.tasks(id_prefix=prefix, limit=100)
    assert {record.id for record in found.records} == expected
    assert tp.tasks(id_prefix=made[17], limit=5).records[0].id == made[17]
    assert tp.tasks(id_prefix="zzzz-not-an-id", limit=5).records == []


def test_a_search_stops_at_its_budget_and_goes_on_from_its_cursor(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tp = Taskplane("t")

    @tp.task(name="x.common")
    def common(i: int) -> None: ...

    @tp.task(name="x.rare")
    def rare(i: int) -> None: ...

    rare_id = rare.enqueue(0).id
    time.sleep(0.002)
    for i in range(300):
        common.enqueue(i)
    monkeypatch.setattr(record_search, "SCAN_BUDGET", 100)
    pages = 0
    cursor = None
    found: list[str] = []
    while True:
        page = tp.tasks(state="queued", name=None, queue="normal", limit=5, cursor=cursor, id_prefix=rare_id[:8])
        pages += 1
        found += [record.id for record in page.records]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert found == [rare_id]
    assert pages >= 3  # 301 entries, 100 per call at most


def test_dead_letters_deep_pages_and_counts(redis_url: str) -> None:
    tp = Taskplane("t")
    for i in range(120):
        tp.failure.bury(
            DeadReason.FAILED if i % 3 else DeadReason.POISON,
            task_id=f"dead-{i:03d}",
            name="x.a" if i % 2 else "x.b",
            queue="normal",
            attempts=1,
            args=[i],
        )
    page = tp.dead_letters.find(DeadFilter(queue="normal"), limit=10, offset=100)
    assert len(page) == 10
    merged = tp.dead_letters.find(DeadFilter(), limit=10, offset=100)  # every queue, merged
    assert [letter.id for letter in page] == [letter.id for letter in merged]
    assert tp.dead_letters.count(DeadFilter(queue="normal")) == 120
    assert tp.dead_letters.count(DeadFilter(queue="normal", task="x.a")) == 60
    assert tp.dead_letters.count(DeadFilter(reason="poison")) == 40
    assert tp.dead_letters.count(DeadFilter(queue="high")) == 0


def test_history_counts_finished_tasks_per_minute(redis_url: str) -> None:
    tp = Taskplane("t")
    first = int(time.time() // 60) * 60_000  # the writes may straddle a minute's end on a busy machine
    changes = MetricChanges("w1@host")
    changes.count(Metric.SUCCEEDED, "x.a", "w1@host", "normal", amount=5)
    changes.count(Metric.FAILED, "x.a", "w1@host", "normal", "ValueError")
    changes.count(Metric.SENT, "x.a", "w1@host", "normal", amount=9)  # not a finish: not charted
    tp.stores.metrics.write(changes)
    tp.stores.metrics.write(MetricChanges("w2@host").count(Metric.SUCCEEDED, "x.b", "w2@host", "normal"))
    minutes = tp.stores.metrics.history(60)
    assert len(minutes) == 60 and minutes[-1]["minute_ms"] == int(time.time() // 60) * 60_000
    written = [row for row in minutes if row["minute_ms"] >= first]  # the writes' minute, and the next if one began
    assert sum(row["succeeded"] for row in written) == 6 and sum(row["failed"] for row in written) == 1
    assert sum(row["succeeded"] + row["failed"] for row in minutes if row["minute_ms"] < first) == 0
    key = tp.storage.keys.metrics_minute(int(time.time() // 60))
    assert 0 < tp.storage.client.ttl(key) <= 2 * 3600  # bounded: each minute expires


def test_the_firing_log_over_http(redis_url: str) -> None:
    from tests.apps.sched_app import tp

    task_id = tp.schedules.run("nightly")
    _, token = tp.api_keys.create("ops", ["read"])
    headers = {"Authorization": f"Bearer {token}"}
    with serve_in_thread(create_app(tp)) as base:
        fires = httpx.get(f"{base}/api/v1/schedules/nightly/fires", headers=headers).json()
        assert fires["schedule"] == "nightly"
        assert [(fire["kind"], fire["task_id"]) for fire in fires["fires"]] == [("manual", task_id)]
        assert httpx.get(f"{base}/api/v1/schedules/nope/fires", headers=headers).status_code == 404


def test_running_tasks_per_queue_over_http(redis_url: str, start_worker: StartWorker) -> None:
    from tests.apps.core_app import tp

    handle = tp.enqueue("t.slow", [3.0, "dash"])
    start_worker(queues="normal", concurrency=1)
    wait_for(lambda: tp.handle(handle.id).record().state == "started", 30, "the task to start")
    stats = {row["queue"]: row for row in tp.queues.stats()}
    assert stats["normal"]["running"] == 1 and stats["critical"]["running"] == 0
    _, token = tp.api_keys.create("ops", ["admin"])
    headers = {"Authorization": f"Bearer {token}"}
    with serve_in_thread(create_app(tp)) as base:
        queues = httpx.get(f"{base}/api/v1/queues", headers=headers).json()
        assert {row["queue"]: row["running"] for row in queues}["normal"] == 1
        history = httpx.get(f"{base}/api/v1/history", params={"minutes": 5}, headers=headers).json()
        assert len(history["minutes"]) == 5
        assert httpx.get(f"{base}/api/v1/history", params={"minutes": 0}, headers=headers).status_code == 422
        count = httpx.get(f"{base}/api/v1/dead-letters/count", params={"queue": "normal"}, headers=headers)
        assert count.json() == {"count": 0}
        found = httpx.get(f"{base}/api/v1/tasks", params={"id_prefix": handle.id[:6]}, headers=headers).json()
        assert [task["id"] for task in found["tasks"]] == [handle.id]


def test_the_unfiltered_list_merges_every_state_and_the_running_tasks(
    redis_url: str, start_worker: StartWorker
) -> None:
    # Given tasks in six states, created in turn (no index holds them all)
    from tests.apps.core_app import tp

    made: list[str] = []

    def made_now(task_id: str) -> str:
        made.append(task_id)
        time.sleep(0.002)  # creation times differ, except where a page boundary falls on equal ones
        return task_id

    running = made_now(tp.enqueue("t.slow", [120.0, "listed"]).id)  # runs on through the test (the fixture ends it)
    start_worker(queues="normal", concurrency=1)
    wait_for(lambda: tp.handle(running).record().state == "started", 60, "the slow task to start")
    for i in range(3):
        made_now(tp.enqueue("t.add", [i, i], queue="high").id)
    made_now(tp.enqueue("t.add", [9, 9], countdown=3600).id)  # scheduled
    cancelled = made_now(tp.enqueue("t.add", [8, 8]).id)
    tp.cancel(cancelled)
    made_now(tp.enqueue("t.not_retryable", queue="high").id)  # dead: KeyError is never retried
    for i in range(4):
        made_now(tp.enqueue("t.add", [i, 1]).id)  # queued behind the slow task
    worker = start_worker(queues="high", concurrency=1)
    wait_for(lambda: len(tp.tasks(state="succeeded").records) == 3, 60, "the high tasks to succeed")
    wait_for(lambda: tp.tasks(state="dead").records, 60, "the dead task")
    worker.stop()
    # When the list is read three at a time with no filter
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        page = tp.tasks(limit=3, cursor=cursor)
        seen += [(record.id, record.state) for record in page.records]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # Then every task comes once, newest first, in every state it is in, the running one among them
    assert [task_id for task_id, _ in seen] == made[::-1]
    assert dict(seen)[running] == "started"
    assert {state for _, state in seen} == {"started", "succeeded", "scheduled", "cancelled", "dead", "queued"}
    assert [r.id for r in tp.tasks(limit=100, since_ms=tp.handle(made[5]).record().fields["created_ms"]).records] == (
        made[5:][::-1]
    )
