"""A batch written without waiting for its replies (a task's final writes): the writes land at once, also
on a server that lost its script cache, and a connection lost before the replies came sends them again."""

from __future__ import annotations

import time

import redis

from taskplane.redis.keys import Keys
from taskplane.redis.storage import Storage


def storage(redis_url: str) -> Storage:
    return Storage(redis.Redis.from_url(redis_url, decode_responses=True), Keys("sent-test:"))


def test_the_writes_land_before_the_replies_are_read(redis_url: str) -> None:
    store = storage(redis_url)
    batch = store.batch()
    batch.pipe.set("sent-test:a", "1")
    batch.pipe.incr("sent-test:n")
    sent = batch.send()
    deadline = time.monotonic() + 5
    while store.client.get("sent-test:a") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.client.get("sent-test:a") == "1"
    assert sent.settle() == ["OK", 1]  # raw replies
    assert store.client.get("sent-test:n") == "1"  # settled once: not sent again


def test_scripts_run_at_once_on_a_server_without_them(redis_url: str) -> None:
    store = storage(redis_url)
    store.client.script_flush()
    batch = store.batch()
    store_keys = [store.keys.record("q", "t1"), "sent-test:name", "sent-test:queue", "sent-test:ev"]
    batch.script("record_write", store_keys, [0, 1, 60, 0, "t1", "name", "x", "queue", "q"])
    sent = batch.send()
    deadline = time.monotonic() + 5
    while not store.client.exists(store.keys.record("q", "t1")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.client.hget(store.keys.record("q", "t1"), "name") == "x"
    sent.settle()


def test_a_connection_lost_before_the_replies_sends_the_batch_again(redis_url: str) -> None:
    store = storage(redis_url)
    admin = redis.Redis.from_url(redis_url)
    admin.client_pause(1000, all=False)  # write commands wait for a second
    batch = store.batch()
    batch.pipe.incr("sent-test:count")
    sent = batch.send()
    time.sleep(0.1)  # the server holds the INCR
    # The connection dies
    admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")  # type: ignore[no-untyped-call]
    assert sent.settle() == [1]  # sent again on a new connection, applied once
    assert store.client.get("sent-test:count") == "1"
