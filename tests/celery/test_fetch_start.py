"""The fetch script starts the tasks it takes (``fetch.lua``): what ``run_start.lua`` does in a task's process,
done in the worker's fetch so that the process makes no round trip before the task body."""

from __future__ import annotations

import json
import time
from typing import Any

from taskplane.core.protocol import TaskState
from taskplane.redis.scripts import Scripts
from taskplane.stores.records import start_arguments
from tests.apps.core_app import events, slow, tp
from tests.workers import StartWorker, wait_for

WORKER = "fetcher@test"
LIMIT = 10_000


def message(task_id: str, name: str = "t.add", tag: str = "t", **headers: Any) -> str:
    """A kombu message of a task as a publisher queues it."""
    return json.dumps(
        {
            "body": "W1sxLCAyXSwge30sIHt9XQ==",
            "headers": {"id": task_id, "task": name, "retries": 0, **headers},
            "properties": {"delivery_tag": tag, "delivery_info": {"exchange": "", "routing_key": "normal"}},
        }
    )


def fetch(*items: str, skipped: tuple[str, ...] = ()) -> list[Any]:
    """Queue ``items`` in the normal queue and take them with one fetch that starts what it may, with the
    arguments the worker's channel gives (taskplane.celery.fetch)."""
    client, keys = tp.storage.client, tp.storage.keys
    client.lpush(keys.queue("normal"), *items)
    script_keys = [keys.unacked("normal"), keys.unacked_index("normal"), keys.bell("normal"), keys.quarantine("normal")]
    script_keys.append(keys.queue("normal"))
    start = start_arguments(keys, WORKER, 3600, LIMIT, list(skipped))
    reply = Scripts(client).run("fetch", script_keys, [time.time(), 1, 1, 16, "normal", 0, *start])
    return [reply[index + 2] for index in range(1, len(reply), 3)]


def test_a_fetched_task_is_started_counted_and_moved_out_of_the_queued_index(redis_url: str) -> None:
    handle = slow.enqueue(0, "fetched")  # recorded as queued; no worker runs
    item = tp.storage.client.rpop(tp.storage.keys.queue("normal"))
    assert item is not None
    before = time.time()
    assert fetch(item) == ["0:1"]
    record = handle.record()
    assert record.state == TaskState.STARTED and record.fields["worker"] == WORKER
    assert record.fields["deliveries"] == 1 and record.fields["attempts"] == 1
    assert before - 1 <= record.fields["started_ms"] / 1000 <= time.time() + 1
    assert handle.id not in tp.storage.client.zrange(tp.storage.keys.index_state("normal", TaskState.QUEUED), 0, -1)
    # The same attempt delivered again (its lease ran out): the second delivery
    assert fetch(item) == ["0:2"]
    assert handle.record().fields["deliveries"] == 2


def test_a_task_is_started_under_the_queue_it_was_taken_from_whatever_its_routing_key(redis_url: str) -> None:
    """A message in ``normal`` whose routing key names another queue (a client's own route, a hand-made
    message): its record is written under ``normal``, in that queue's slot, as the worker reads it
    (taskplane.celery.intake.taken_from). Keys of another queue would be in another slot: on a cluster the
    script would fail after taking the messages, and lose them."""
    elsewhere = json.loads(message("routed", tag="r"))
    elsewhere["properties"]["delivery_info"]["routing_key"] = "reports"
    assert fetch(json.dumps(elsewhere)) == ["0:1"]
    keys = tp.storage.keys
    assert tp.storage.client.hget(keys.record("normal", "routed"), "queue") == "normal"
    assert tp.storage.client.exists(keys.record("reports", "routed")) == 0


def test_a_cancelled_or_finished_task_is_not_started(redis_url: str) -> None:
    client, keys = tp.storage.client, tp.storage.keys
    client.set(keys.cancel("normal", "gone"), 1)  # cancelled before any record was written
    done = slow.enqueue(0, "done")
    again = client.rpop(keys.queue("normal"))  # its message, taken again after it succeeded
    tp.stores.records.write(done.id, "t.slow", "normal", TaskState.SUCCEEDED)
    assert again is not None
    assert fetch(message("gone"), again) == ["1:0", "2:0"]  # cancelled, already succeeded
    assert client.exists(keys.record("normal", "gone")) == 0 and done.record().state == TaskState.SUCCEEDED


def test_what_the_fetch_must_not_start_is_left_to_the_task_process(redis_url: str) -> None:
    limited = message("limited", name="t.limited", tag="a")
    timed = message("timed", tag="b", eta="2030-01-01T00:00:00+00:00")
    expiring = message("expiring", tag="e", expires="2030-01-01T00:00:00+00:00")
    large = json.dumps({**json.loads(message("large", tag="c")), "pad": "x" * LIMIT})
    nameless = json.dumps({"body": "", "headers": {"id": "nameless"}, "properties": json.loads(limited)["properties"]})
    assert fetch(limited, timed, expiring, large, nameless, skipped=("t.limited",)) == [None] * 5
    for task_id in ("limited", "timed", "expiring", "large", "nameless"):
        assert tp.storage.client.exists(tp.storage.keys.record("normal", task_id)) == 0, task_id


def test_prefetched_tasks_returned_at_shutdown_do_not_count_as_deliveries(
    start_worker: StartWorker, redis_url: str
) -> None:
    # Given a one-process worker that takes 4 messages at a time: a long task and three it holds back
    long = slow.enqueue(2, "long")
    held = [slow.enqueue(0, f"held-{i}") for i in range(3)]
    worker = start_worker(env={"TASKPLANE_PREFETCH_MULTIPLIER": "4", "TASKPLANE_SHUTDOWN_TIMEOUT": "30"})
    wait_for(lambda: all(h.record().fields.get("deliveries") == 1 for h in held), 20, "the fetch to start them")
    wait_for(lambda: any(e["tag"] == "long" for e in events("start")), 20, "the long task's body to begin")
    # When it is stopped gracefully while the long task runs
    worker.stop()
    assert long.record().state == TaskState.SUCCEEDED
    # Then those it had not begun went back to their queue, queued again, with their delivery taken back
    # (one may have begun as the long task ended: it finished then)...
    returned = [h.record() for h in held if h.record().state != TaskState.SUCCEEDED]
    assert len(returned) >= 2 and [r.state for r in returned] == [TaskState.QUEUED] * len(returned)
    assert [r.fields["deliveries"] for r in returned] == [0] * len(returned)
    # ...and each ran once more, as its first delivery, on the next worker
    start_worker()
    assert [h.wait(timeout=20).fields["deliveries"] for h in held] == [1, 1, 1]


def test_a_message_held_for_the_next_process_goes_back_when_none_frees_in_time(
    start_worker: StartWorker, redis_url: str
) -> None:
    # Given a one-process worker whose fetch takes one message ahead (held 10 ms at most, the default)
    long = slow.enqueue(3, "long")
    after = [slow.enqueue(0, f"after-{i}") for i in range(2)]
    start_worker()
    wait_for(lambda: long.record().state == TaskState.STARTED, 20, "the long task to start")
    # When the process stays busy longer than that
    time.sleep(0.5)
    # Then the one it held is back at the head of its queue, its start undone: both wait as queued
    assert tp.storage.client.llen(tp.storage.keys.queue("normal")) == 2
    records = [h.record() for h in after]
    assert [r.state for r in records] == [TaskState.QUEUED, TaskState.QUEUED]
    assert [r.fields.get("deliveries") or 0 for r in records] == [0, 0]
    # (the one held went through the record write: queued, started, queued again, each a new version)
    assert sorted(r.fields["version"] for r in records) == [1, 3]
    # ...and both run after the long one, each as its first delivery, in their order
    assert [h.wait(timeout=20).fields["deliveries"] for h in after] == [1, 1]
    assert after[0].record().fields["started_ms"] <= after[1].record().fields["started_ms"]
