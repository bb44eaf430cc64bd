"""The HTTP API over real HTTP (``taskplane api`` subprocess) against the real server and real workers."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from taskplane.redis.keys import Keys
from tests.workers import InProcessWorker, StartWorker, wait_for

API = "/api/v1"


@pytest.fixture
def keys(redis_url: str) -> dict[str, str]:
    """Tokens for one key per scope (made after the server was emptied for the test)."""
    from tests.apps.core_app import tp

    return {scope: tp.api_keys.create(f"test-{scope}", [scope])[1] for scope in ("read", "enqueue", "admin")}


def client(base_url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url + API, headers=headers, timeout=30)


def read_events(response: httpx.Response, first: threading.Event | None = None) -> list[dict[str, Any]]:
    """Parse a text/event-stream body into events (comments skipped) until the server ends it; ``first``
    is set once the first event arrived."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if current:
                events.append(current)
                current = {}
                if first is not None:
                    first.set()
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            current[field] = json.loads(value) if field == "data" else value
    if current:
        events.append(current)
    return events


def test_enqueue_then_the_event_stream_sees_every_progress_step_and_the_result(
    api_url: str, keys: dict[str, str], worker_in_process: InProcessWorker
) -> None:
    # Given a task queued over HTTP and its event stream opened before any worker runs
    with client(api_url, keys["enqueue"]) as producer:
        answer = producer.post("/tasks", json={"task": "t.paced", "args": [5, 0.15]})
    assert answer.status_code == 202, answer.text
    queued = answer.json()
    assert queued["state"] == "queued" and queued["existing"] is False
    collected: list[dict[str, Any]] = []
    opened = threading.Event()

    def follow() -> None:
        headers = {"Authorization": f"Bearer {keys['read']}"}
        with httpx.stream("GET", queued["links"]["events"], headers=headers, timeout=60) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            collected.extend(read_events(response, opened))

    follower = threading.Thread(target=follow)
    follower.start()
    assert opened.wait(30), "the event stream did not open"
    # When a worker starts and runs it
    from tests.apps.core_app import tp

    worker_in_process(tp, queues="normal")
    follower.join(60)
    assert not follower.is_alive(), "the event stream did not end with the task"
    # Then the stream saw each state in order, each progress step, and ended on success
    states = [event["data"]["state"] for event in collected if event["event"] == "state"]
    assert states == ["queued", "started", "progress", "succeeded"]
    steps = [event["data"]["progress_current"] for event in collected if event["data"]["state"] == "progress"]
    assert steps == [1, 2, 3, 4, 5]
    assert [int(event["id"]) for event in collected] == list(range(1, len(collected) + 1))
    with client(api_url, keys["read"]) as reader:
        result = reader.get(f"/tasks/{queued['id']}/result")
        record = reader.get(f"/tasks/{queued['id']}").json()
    assert result.status_code == 200 and result.json()["result"] == 5
    assert record["state"] == "succeeded" and record["attempts"] == 1 and record["worker"].endswith("@test")


def test_result_is_409_until_done_and_404_for_an_unknown_id(api_url: str, keys: dict[str, str]) -> None:
    with client(api_url, keys["admin"]) as api:
        task_id = api.post("/tasks", json={"task": "t.add", "args": [1, 2]}).json()["id"]
        pending = api.get(f"/tasks/{task_id}/result")
        assert pending.status_code == 409 and pending.json()["error"]["code"] == "not_finished"
        assert api.get("/tasks/nope/result").status_code == 404
        assert api.get("/tasks/nope/events").status_code == 404
        missing = api.get("/tasks/nope")
        assert missing.status_code == 404 and missing.json()["error"]["message"] == "task nope not found"


def test_an_idempotency_key_answers_with_the_same_task_and_queues_nothing_new(
    api_url: str, keys: dict[str, str]
) -> None:
    from tests.apps.core_app import tp

    body = {"task": "t.add", "args": [2, 3], "idempotency_key": "order-17"}
    with client(api_url, keys["enqueue"]) as api:
        first = api.post("/tasks", json=body)
        again = api.post("/tasks", json=body)
        other_call = api.post("/tasks", json={**body, "args": [2, 4]})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.json()["existing"] is True
    assert other_call.status_code == 409 and other_call.json()["error"]["code"] == "idempotency_conflict"
    assert tp.storage.client.llen(Keys().queue("normal")) == 1
    assert len(tp.tasks().records) == 1


def test_cancel_over_http_queued_never_runs_running_stops_cooperatively(
    api_url: str, keys: dict[str, str], worker_in_process: InProcessWorker
) -> None:
    from tests.apps.core_app import events, tp

    with client(api_url, keys["admin"]) as api:
        # Given a queued task cancelled before any worker exists
        queued_id = api.post("/tasks", json={"task": "t.mark", "args": ["cancelled-one"]}).json()["id"]
        cancelled = api.delete(f"/tasks/{queued_id}")
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        # And a long cooperative task that is running
        worker_in_process(tp, queues="normal")
        running_id = api.post("/tasks", json={"task": "t.cooperative", "args": [30]}).json()["id"]
        wait_for(lambda: events("start"), what="the cooperative task to start")
        # When it is cancelled over HTTP
        assert api.delete(f"/tasks/{running_id}").json()["state"] in ("started", "progress")
        # Then it stops early on its own and ends cancelled ("stopped"), and the queued one never ran
        wait_for(lambda: tp.handle(running_id).record().done, what="the running task to stop")
        stopped = api.get(f"/tasks/{running_id}").json()
        assert stopped["state"] == "cancelled" and stopped["reason"] == "stopped", stopped
        assert tp.handle(running_id).record().result() == "stopped early"
        api.post("/tasks", json={"task": "t.mark", "args": ["after"]})
        wait_for(lambda: events("mark"), what="a later task to run")
    assert [event["tag"] for event in events("mark")] == ["after"]
    assert tp.handle(queued_id).record().state == "cancelled"


def test_cancel_with_terminate_after_stops_a_task_that_ignores_it(
    api_url: str, keys: dict[str, str], start_worker: StartWorker
) -> None:
    from tests.apps.core_app import events, tp

    start_worker(queues="normal")
    with client(api_url, keys["enqueue"]) as api:
        task_id = api.post("/tasks", json={"task": "t.stubborn", "args": [30]}).json()["id"]
        wait_for(lambda: events("start"), what="the stubborn task to start")
        assert api.delete(f"/tasks/{task_id}", params={"terminate_after": 0.5}).status_code == 200
    wait_for(lambda: tp.handle(task_id).record().state == "cancelled", timeout=20, what="termination")
    assert not events("end")


def test_dead_letters_listed_shown_and_requeued_over_http(
    api_url: str, keys: dict[str, str], worker_in_process: InProcessWorker
) -> None:
    from tests.apps.core_app import tp

    # Given a task that failed through its retries into the dead letters
    worker_in_process(tp, queues="normal")
    with client(api_url, keys["admin"]) as admin, client(api_url, keys["read"]) as reader:
        task_id = admin.post("/tasks", json={"task": "t.fails_until_fixed", "args": ["api-key"]}).json()["id"]
        wait_for(lambda: tp.handle(task_id).record().state == "dead", what="the task to be dead-lettered")
        listed = reader.get("/dead-letters", params={"task": "t.fails_until_fixed"}).json()
        assert [letter["id"] for letter in listed["dead_letters"]] == [task_id]
        shown = reader.get(f"/dead-letters/{task_id}").json()
        assert shown["reason"] == "retries_exhausted" and "api-key is broken" in shown["traceback"]
        assert {q["queue"]: q["dead"] for q in reader.get("/queues").json()}["normal"] == 1
        # When the cause is fixed and an admin requeues it (a read key may not)
        tp.storage.client.set("api-key", "fixed")
        assert reader.post("/dead-letters/requeue", json={"ids": [task_id]}).status_code == 403
        requeued = admin.post("/dead-letters/requeue", json={"ids": [task_id]})
        assert requeued.status_code == 200 and requeued.json() == {"requeued": [task_id]}
        # Then it runs to success and the dead-letter queue is empty
        wait_for(lambda: tp.handle(task_id).record().state == "succeeded", what="the requeued task to succeed")
        assert admin.get("/dead-letters").json()["dead_letters"] == []
        assert admin.get(f"/tasks/{task_id}/result").json()["result"] == "repaired"


def test_dead_letters_purged_by_id_or_filter_and_an_empty_selection_is_refused(
    api_url: str, keys: dict[str, str]
) -> None:
    from taskplane import DeadLetter
    from tests.apps.core_app import tp

    for index, reason in enumerate(["poison", "poison", "time_limit"]):
        tp.dead_letters.add(DeadLetter(id=f"d{index}", name="t.add", queue="normal", reason=reason))
    with client(api_url, keys["admin"]) as admin:
        refused = admin.delete("/dead-letters")
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_request"
        assert admin.delete("/dead-letters", params={"id": "d2"}).json() == {"purged": 1}
        assert admin.delete("/dead-letters", params={"reason": "poison"}).json() == {"purged": 2}
        assert admin.delete("/dead-letters", params={"id": "d9"}).status_code == 404
        assert admin.get("/dead-letters").json() == {"dead_letters": [], "next_offset": None}


def test_task_history_filters_and_cursor_paging(api_url: str, keys: dict[str, str]) -> None:
    with client(api_url, keys["admin"]) as api:
        ids = [api.post("/tasks", json={"task": "t.add", "args": [i, i]}).json()["id"] for i in range(5)]
        ids.append(api.post("/tasks", json={"task": "t.mark", "args": ["x"], "countdown": 60}).json()["id"])
        seen: list[str] = []
        cursor = None
        while True:
            page = api.get("/tasks", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
            seen += [task["id"] for task in page["tasks"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ids[::-1]
        by_name = api.get("/tasks", params={"name": "t.mark"}).json()["tasks"]
        assert [(t["id"], t["state"]) for t in by_name] == [(ids[-1], "scheduled")]
        assert len(api.get("/tasks", params={"state": "queued"}).json()["tasks"]) == 5
        assert api.get("/tasks", params={"since": "2999-01-01T00:00:00Z"}).json()["tasks"] == []
        assert len(api.get("/tasks", params={"until": "2999-01-01T00:00:00"}).json()["tasks"]) == 6
        typo = api.get("/tasks", params={"stat": "dead"})
        assert typo.status_code == 422 and typo.json()["error"]["details"] == {"unknown": ["stat"]}
        bad = api.get("/tasks", params={"cursor": "nonsense"})
        assert bad.status_code == 422 and "bad cursor" in bad.json()["error"]["message"]


def test_queues_workers_and_ready_report_the_live_system(
    api_url: str, keys: dict[str, str], start_worker: StartWorker
) -> None:
    worker = start_worker(queues="critical,normal", concurrency=2)
    with client(api_url, keys["read"]) as api:
        api_workers = api.get("/workers").json()
        assert [(w["hostname"], w["queues"], w["concurrency"]) for w in api_workers] == [
            (worker.hostname, ["critical", "normal"], 2)
        ]
        ready = api.get("/ready").json()
        assert ready["status"] == "ready"
        assert ready["workers_per_queue"]["critical"] == 1 and ready["workers_per_queue"]["low"] == 0
        assert [q["queue"] for q in api.get("/queues").json()] == ["critical", "high", "normal", "low", "reports"]


def test_bad_input_gets_one_error_shape_and_queues_nothing(api_url: str, keys: dict[str, str]) -> None:
    from tests.apps.core_app import tp

    with client(api_url, keys["enqueue"]) as api:
        unknown = api.post("/tasks", json={"task": "t.nope"})
        wrong_args = api.post("/tasks", json={"task": "t.add", "args": [1]})
        not_json = api.post("/tasks", content=b"{not json", headers={"content-type": "application/json"})
        both_delays = api.post("/tasks", json={"task": "t.add", "args": [1, 2], "countdown": 1, "eta": "2030-01-01"})
        bad_queue = api.post("/tasks", json={"task": "t.add", "args": [1, 2], "queue": "nowhere"})
        extra_field = api.post("/tasks", json={"task": "t.add", "args": [1, 2], "priority": 9})
        too_big = api.post("/tasks", json={"task": "t.add", "args": ["x" * (1024 * 1024), 1]})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_task"
    assert "t.add" in unknown.json()["error"]["details"]["known_tasks"]
    assert wrong_args.status_code == 422 and "missing a required argument: 'b'" in wrong_args.json()["error"]["message"]
    assert not_json.status_code == 422 and not_json.json()["error"]["message"] == "the request body is not valid JSON"
    assert both_delays.status_code == 422 and "countdown or eta" in both_delays.json()["error"]["message"]
    assert bad_queue.status_code == 422 and "unknown queue 'nowhere'" in bad_queue.json()["error"]["message"]
    assert extra_field.status_code == 422
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    for response in (unknown, wrong_args, not_json, both_delays, bad_queue, extra_field, too_big):
        assert set(response.json()) == {"error"} and set(response.json()["error"]) == {"code", "message", "details"}
    assert tp.tasks().records == [] and tp.storage.client.llen(Keys().queue("normal")) == 0
