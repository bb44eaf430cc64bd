"""Batch enqueue: every item checked first, records written with the messages, 200 per round trip, over
the library and the HTTP API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from taskplane import TaskArgumentsError, UnknownTaskError
from taskplane.client.producer import BATCH_CHUNK
from taskplane.redis.keys import Keys
from tests.api_server import serve_in_thread
from tests.apps.core_app import add, mark, tp, unique
from tests.workers import InProcessWorker


def test_a_batch_is_queued_in_order_with_a_record_per_task(redis_url: str) -> None:
    handles = tp.enqueue_many("t.add", [[i, i] for i in range(BATCH_CHUNK + 20)])
    assert len(handles) == BATCH_CHUNK + 20 and len({h.id for h in handles}) == len(handles)
    assert tp.storage.client.llen(Keys().queue("normal")) == len(handles)
    records = [h.record() for h in handles[:3]]
    assert [(r.state, r.to_dict()["args"]) for r in records] == [
        ("queued", [0, 0]),
        ("queued", [1, 1]),
        ("queued", [2, 2]),
    ]


def test_a_bad_item_queues_nothing_and_is_named(redis_url: str) -> None:
    with pytest.raises(TaskArgumentsError, match=r"item 2: bad arguments"):
        add.enqueue_many([[1, 2], {"a": 1, "b": 2}, [1, 2, 3]])
    with pytest.raises(UnknownTaskError):
        tp.enqueue_many("t.nope", [[1]])
    assert tp.storage.client.llen(Keys().queue("normal")) == 0
    assert tp.tasks().records == []


def test_a_delayed_batch_waits_in_the_delayed_store_and_runs(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    handles = mark.enqueue_many([["a"], ["b"]], countdown=0.5)
    assert {h.record().state for h in handles} == {"scheduled"}
    assert tp.storage.client.zcard(tp.storage.keys.delayed("normal")) == 2
    worker_in_process(tp)
    assert [h.wait(timeout=20).result() for h in handles] == ["a", "b"]


def test_a_batch_of_a_unique_task_reuses_the_id_of_an_equal_queued_task(redis_url: str) -> None:
    first, again, other = unique.enqueue_many([["a"], ["a"], ["b"]])
    assert first.id == again.id != other.id
    assert (first.existing, again.existing, other.existing) == (False, True, False)
    assert tp.storage.client.llen(Keys().queue("normal")) == 2
    assert unique.enqueue("b").id == other.id


KILLED_BATCH = """
import sys
from tests.apps.core_app import unique
unique.enqueue_many([[f"item-{i}"] for i in range(int(sys.argv[1]))])
"""


def test_a_unique_batch_killed_midway_and_enqueued_again_loses_nothing(redis_url: str) -> None:
    """The uniqueness locks go out in the same atomic step as their messages: a producer killed between two
    chunks leaves no lock without its message, so the same batch enqueued again queues what did not go out."""
    count = BATCH_CHUNK * 25
    queue = Keys().queue("normal")
    producer = subprocess.Popen(
        [sys.executable, "-c", KILLED_BATCH, str(count)],
        env={**os.environ, "TASKPLANE_REDIS_URL": redis_url},
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        deadline = time.monotonic() + 60
        while tp.storage.client.llen(queue) < BATCH_CHUNK and time.monotonic() < deadline:
            time.sleep(0.002)
    finally:
        producer.send_signal(signal.SIGKILL)
        producer.wait(timeout=30)
    first_run = tp.storage.client.llen(queue)
    assert BATCH_CHUNK <= first_run < count, "the producer was not killed in the middle of its batch"
    handles = unique.enqueue_many([[f"item-{i}"] for i in range(count)])
    assert tp.storage.client.llen(queue) == count == len({handle.id for handle in handles})
    assert sum(handle.existing for handle in handles) == first_run
    missing = [handle.id for handle in handles if handle.record() is None]
    assert missing == []


def test_the_batch_endpoint_checks_every_item_and_queues_them(redis_url: str) -> None:
    _, token = tp.api_keys.create("batch", ["enqueue"])
    headers = {"Authorization": f"Bearer {token}"}
    with api_client(headers) as api:
        bad = api.post("/tasks/batch", json={"task": "t.add", "items": [{"args": [1, 2]}, {"args": [1]}]})
        assert bad.status_code == 422 and "item 1" in bad.json()["error"]["message"]
        assert tp.storage.client.llen(Keys().queue("normal")) == 0
        too_many = api.post("/tasks/batch", json={"task": "t.add", "items": [{"args": [1, 2]}] * 1001})
        assert too_many.status_code == 422
        good = api.post(
            "/tasks/batch",
            json={"task": "t.add", "items": [{"args": [1, 2]}, {"kwargs": {"a": 3, "b": 4}}], "queue": "reports"},
        )
        assert good.status_code == 202, good.text
        ids = good.json()["ids"]
        assert [tp.handle(i).record().queue for i in ids] == ["reports", "reports"]


@contextmanager
def api_client(headers: dict[str, str]) -> Iterator[httpx.Client]:
    """An httpx client of the API app served in a thread of this process."""
    from taskplane.api import create_app

    with (
        serve_in_thread(create_app(tp)) as base_url,
        httpx.Client(base_url=f"{base_url}/api/v1", headers=headers, timeout=30) as client,
    ):
        yield client
