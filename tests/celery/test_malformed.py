"""Every kind of bad queue item is dead-lettered with a reason, and the worker keeps running."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from taskplane.redis.keys import Keys
from tests.apps.core_app import add, tp
from tests.conftest import empty
from tests.workers import wait_for


def message(body: Any = None, **changes: Any) -> dict[str, Any]:
    """A well-formed t.add message (args [1, 1]) with ``changes`` applied ("headers.x" for a header)."""
    raw_body = json.dumps([[1, 1], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    item: dict[str, Any] = {
        "body": base64.b64encode(raw_body.encode()).decode() if body is None else body,
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": "t.add",
            "id": "bad-1",
            "root_id": "bad-1",
            "parent_id": None,
            "group": None,
            "retries": 0,
            "timelimit": [None, None],
            "eta": None,
            "expires": None,
        },
        "properties": {
            "correlation_id": "bad-1",
            "body_encoding": "base64",
            "delivery_tag": "tag-bad-1",
            "delivery_info": {"exchange": "normal", "routing_key": "normal"},
            "priority": 0,
        },
    }
    for path, value in changes.items():
        where, _, key = path.rpartition(".")
        target = item[where] if where else item
        target[key] = value
    return item


def b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def nested_b64(depth: int) -> str:
    """Base64 of a body of args nested ``depth`` lists deep (built as text: json.dumps cannot go so deep)."""
    return base64.b64encode(("[" + "[" * depth + "]" * depth + ", {}, {}]").encode()).decode()


KINDS: dict[str, Any] = {
    "not json": "this is not json",
    "json but not an object": "[1, 2, 3]",
    "no body": {k: v for k, v in message().items() if k != "body"},
    "no properties": {k: v for k, v in message().items() if k != "properties"},
    "body not base64": message(body="%%%not base64%%%"),
    "unknown body encoding": message(**{"properties.body_encoding": "rot13"}),
    "body decodes to an object": message(body=b64({"a": 1})),
    "body decodes to a short list": message(body=b64([[1, 1]])),
    "body is not json": message(body=base64.b64encode(b"{not json").decode()),
    "kwargs not an object": message(body=b64([[1, 1], [1], {}])),
    "args not a list": message(body=b64(["x", {}, {}])),
    "content type pickle": message(**{"content-type": "application/x-python-serialize"}),
    "unknown task": message(**{"headers.task": "no.such.task"}),
    "timelimit not numbers": message(**{"headers.timelimit": "zz"}),
    "retries not a number": message(**{"headers.retries": "many"}),
    "null id": message(**{"headers.id": None}),
    "empty delivery info": message(**{"properties.delivery_info": {}}),
    "headers not an object": message(**{"headers": "nope"}),
    "eta not a date": message(**{"headers.eta": "tomorrow-ish"}),
    "larger than the payload limit": message(body=b64([["x" * 8 * 1024 * 1024], {}, {}])),
    # Hostile items: each stopped the worker before the one parser (issue 25)
    "body nested 3,000 levels": message(body=nested_b64(3_000)),
    "body nested 100,000 levels": message(body=nested_b64(100_000)),
    "body nested 150 levels": message(body=nested_b64(150)),
    "headers nested 990 levels": json.dumps(message(**{"headers.deep": "@"})).replace('"@"', "[" * 990 + "]" * 990),
    "headers a list": message(**{"headers": [1, 2]}),
    "delivery_info a list": message(**{"properties.delivery_info": ["normal", "normal"]}),
    "a hex number Lua reads": json.dumps(message()).replace('"priority": 0', '"priority": 0x10'),
    "nan Lua reads": json.dumps(message()).replace('"priority": 0', '"priority": nan'),
    "body not a string": message(body=12),
    "raw bytes that are not UTF-8": b"\xff\xfe\x00binary\x80",
    "a task name that is not UTF-8": json.dumps(message()).encode().replace(b'"t.add"', b'"t.\xffadd"'),
    "a task message with one stray byte": json.dumps(message()).encode().replace(b'"lang": "py"', b'"lang": "p\xc3"'),
}


@pytest.fixture(scope="module")
def one_worker(redis_server: str) -> Iterator[Any]:
    """One in-process worker for every kind: each kind must leave it running for the next."""
    from celery.contrib.testing.worker import start_worker

    empty(redis_server)  # nothing an earlier test left (e.g. a scheduler's ticks) reaches this worker
    tp.celery.amqp.queues.select(tp.topology.names())
    with start_worker(tp.celery, pool="solo", perform_ping_check=False, hostname="wmalformed@test") as worker:
        yield worker


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_bad_item_is_dead_lettered_with_a_reason_and_the_worker_runs_on(
    kind: str, one_worker: Any, redis_url: str
) -> None:
    bad = KINDS[kind]
    tp.storage.client.lpush(Keys().queue("normal"), bad if isinstance(bad, str | bytes) else json.dumps(bad))
    worker = one_worker
    assert add.enqueue(2, 3).result(timeout=20) == 5  # the worker still runs real tasks
    letters = wait_for(lambda: tp.dead_letters.find(), 10, f"a dead letter for {kind}")
    assert len(letters) == 1 and letters[0].reason in ("malformed", "unknown_task"), letters
    assert letters[0].exception_message
    assert worker.blueprint.state == 1  # RUN: nothing stopped the worker
    # nothing left in flight (the last acknowledgement rides on the worker's next fetch or wait)
    wait_for(lambda: tp.storage.client.hlen(tp.storage.keys.unacked("normal")) == 0, 5, "nothing in flight")


def test_an_item_that_is_not_utf8_keeps_its_bytes_and_cannot_be_requeued(one_worker: Any, redis_url: str) -> None:
    from taskplane import NotFoundError

    data = b"\xff\xfe\x00binary\x80"
    tp.storage.client.lpush(Keys().queue("normal"), data)
    assert add.enqueue(2, 3).result(timeout=20) == 5
    letter = wait_for(lambda: tp.dead_letters.find(), 10, "the dead letter")[0]
    assert letter.raw_encoding == "base64" and base64.b64decode(letter.raw or "") == data
    assert "not UTF-8 text" in letter.exception_message
    with pytest.raises(NotFoundError, match="not UTF-8"):
        tp.dead_letters.requeue(ids=[letter.id])


def test_quarantined_items_left_by_a_dead_worker_are_dead_lettered_whatever_their_bytes(redis_url: str) -> None:
    """A worker that died between its fetch setting items aside and dead-lettering them left them in the
    quarantine hash: the next worker's start buries them, the one that is not UTF-8 too (it broke the
    clean-up of every item before), and an entry in the earlier JSON format."""
    import hashlib

    keys = tp.storage.keys
    normal = keys.queue("normal")
    binary = tp.storage.binary()
    try:
        for item in (b"garbage", b"\xff\x00not text"):
            binary.hset(keys.quarantine("normal"), hashlib.sha1(item).hexdigest(), normal.encode() + b"\n" + item)
        binary.hset(keys.quarantine("normal"), "old", json.dumps([normal, "older format"]))
    finally:
        binary.close()
    assert tp.failure.bury_quarantined(["normal", "high"], keys.queue_of) == 3
    assert tp.storage.client.hlen(keys.quarantine("normal")) == 0
    letters = {letter.raw: letter for letter in tp.dead_letters.find()}
    assert set(letters) == {"garbage", base64.b64encode(b"\xff\x00not text").decode(), "older format"}
    assert all(letter.queue == "normal" and letter.reason == "malformed" for letter in letters.values())


def sweep() -> None:
    """The lease sweep of the normal queue, once, as a worker's timer runs it (the in-process test worker runs
    none on kombu 5.5: its sweep rides on the event loop this worker does not use)."""
    with tp.celery.connection_for_write() as connection:
        channel: Any = connection.default_channel  # taskplane's channel: kombu's stubs name a StdChannel
        channel.qos.sweep(["normal"], num=100)


@pytest.mark.parametrize(
    "entry",
    [
        b'[{"body": "e30=", "properties": {"priority": nan}}, "normal", "normal"]',
        b'[{"body": "e30=", "properties": {"priority": 0x10}}, "normal", "normal"]',
        b"[" * 5000 + b"]" * 5000,
        b'[{"body": "\xff"}, "normal", "normal"]',
    ],
    ids=["nan", "hex", "deep", "not utf-8"],
)
def test_an_in_flight_entry_the_lease_sweep_cannot_read_is_dead_lettered(
    entry: bytes, one_worker: Any, redis_url: str
) -> None:
    """An entry left in flight by a worker that died before refusing it (its lease ran out): kombu's sweep
    raised on it every time; it is dead-lettered with its bytes, and a good entry beside it runs."""
    keys = tp.storage.keys
    good = json.dumps([message(**{"headers.id": "good-1", "properties.delivery_tag": "good"}), "normal", "normal"])
    binary = tp.storage.binary()
    try:
        binary.hset(keys.unacked("normal"), mapping={"bad": entry, "good": good})
        binary.zadd(keys.unacked_index("normal"), {"bad": 1.0, "good": 1.0})  # leases long run out
    finally:
        binary.close()
    sweep()
    done = wait_for(lambda: (r := tp.status("good-1")) and r.done and r, 30, "the good entry to be restored and run")
    assert done.state == "succeeded" and done.result() == 2
    letter = wait_for(lambda: tp.dead_letters.find(), 30, "the dead letter")[0]
    assert letter.reason == "malformed" and letter.queue == "normal"  # the queue whose in-flight hash held it
    kept = base64.b64decode(letter.raw or "") if letter.raw_encoding else (letter.raw or "").encode()
    assert kept == entry
    wait_for(lambda: tp.storage.client.hlen(keys.unacked("normal")) == 0, 10, "nothing left in flight")
    assert one_worker.blueprint.state == 1


def test_every_bad_kind_through_the_delayed_store_is_dead_lettered(one_worker: Any, redis_url: str) -> None:
    """The same items pushed into a queue's delayed store (due at once): the mover takes them to the queue
    whatever they hold, and each is dead-lettered; the worker runs on."""
    binary = tp.storage.binary()
    try:
        for number, bad in enumerate(KINDS.values()):
            item = bad if isinstance(bad, str | bytes) else json.dumps(bad)
            data = item.encode() if isinstance(item, str) else item
            binary.zadd(Keys().delayed("normal"), {data.replace(b"bad-1", b"bad-%d" % number): 1.0})
    finally:
        binary.close()
    assert add.enqueue(2, 3).result(timeout=20) == 5
    wait_for(lambda: tp.dead_letters.count() == len(KINDS), 30, f"{len(KINDS)} dead letters")
    assert tp.storage.client.zcard(Keys().delayed("normal")) == 0
    assert one_worker.blueprint.state == 1


def test_a_delivery_returned_after_its_binding_table_was_lost_goes_back_to_its_queue(
    one_worker: Any, redis_url: str
) -> None:
    """This test's flush took the binding tables the worker declared (as a server restored from an older
    snapshot would): kombu's restore then found no queue for the delivery and dropped it."""
    keys = tp.storage.keys
    assert not tp.storage.client.keys(f"{keys.prefix}_kombu.binding.*")
    entry = json.dumps([message(**{"headers.id": "orphan-1", "properties.delivery_tag": "orphan"}), "normal", "normal"])
    tp.storage.client.hset(keys.unacked("normal"), "orphan", entry)
    tp.storage.client.zadd(keys.unacked_index("normal"), {"orphan": 1.0})  # its lease long ran out
    sweep()
    done = wait_for(lambda: (r := tp.status("orphan-1")) and r.done and r, 30, "the returned delivery to run")
    assert done.state == "succeeded" and done.result() == 2
