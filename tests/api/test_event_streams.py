"""Event streams: they outlive the body read timeout, share one Redis subscription, and are limited per
API key and in all (429 past a limit, at once)."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.api.test_api import read_events
from tests.api_server import serve_in_thread
from tests.workers import wait_for

API = "/api/v1"


def connections(client: redis.Redis) -> int:
    """Connections to the server now (this client's included)."""
    return len(client.client_list())


def test_a_stream_outlives_the_read_timeout_and_ends_with_its_task(redis_url: str) -> None:
    from taskplane import Taskplane
    from taskplane.api import create_app

    tp = Taskplane("streams", api_read_timeout=1.0)
    _, token = tp.api_keys.create("reader", ["admin"])
    tp.storage.client.hset(
        tp.storage.keys.record("normal", "s-1"), mapping={"state": "queued", "name": "t", "queue": "normal"}
    )
    collected: list[dict[str, Any]] = []
    with serve_in_thread(create_app(tp)) as base_url:
        opened = threading.Event()

        def follow() -> None:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.stream("GET", f"{base_url}{API}/tasks/s-1/events", headers=headers, timeout=60) as response:
                collected.extend(read_events(response, opened))

        follower = threading.Thread(target=follow)
        follower.start()
        assert opened.wait(30)
        time.sleep(3.0)  # three read timeouts: the stream is not cut (it was, with an internal error)
        tp.storage.client.hset(tp.storage.keys.record("normal", "s-1"), mapping={"state": "succeeded", "version": 9})
        follower.join(30)
    assert not follower.is_alive()
    assert [(event["event"], event["data"]["state"]) for event in collected] == [
        ("state", "queued"),
        ("state", "succeeded"),
    ]


def test_streams_share_one_subscription_and_are_limited_per_key_and_in_all(redis_url: str) -> None:
    from taskplane import Taskplane
    from taskplane.api import create_app

    tp = Taskplane("streams", api_max_streams_per_key=3, api_max_streams=5)
    _, first = tp.api_keys.create("first", ["read"])
    _, second = tp.api_keys.create("second", ["read"])
    for number in range(8):
        tp.storage.client.hset(
            tp.storage.keys.record("normal", f"s-{number}"), mapping={"state": "queued", "name": "t"}
        )
    server = redis.Redis.from_url(redis_url)
    kept: list[Iterator[str]] = []
    with serve_in_thread(create_app(tp)) as base_url, contextlib.ExitStack() as open_streams:

        def stream(token: str, number: int) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"}
            client = open_streams.enter_context(httpx.Client(headers=headers, timeout=30))
            response = open_streams.enter_context(client.stream("GET", f"{base_url}{API}/tasks/s-{number}/events"))
            if response.status_code == 200:
                lines = response.iter_lines()  # kept: a line iterator that is dropped closes the response
                next(lines)  # the first event arrived: the stream is open
                kept.append(lines)
            return response

        before = connections(server)
        # Given three streams of one key open
        assert [stream(first, number).status_code for number in range(3)] == [200, 200, 200]
        after_three = connections(server)
        # Then a fourth of that key is refused at once; another key may still open two (five in all)
        refused = stream(first, 3)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "5"
        assert "limit per key" in refused.read().decode()
        assert [stream(second, number).status_code for number in (4, 5)] == [200, 200]
        assert stream(second, 6).status_code == 429  # the limit of the process
        # And five streams hold no more connections than three did: one subscription, one pool
        assert connections(server) <= after_three
    assert after_three - before <= 2, (before, after_three)
    server.close()


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    """The cyclic garbage collector off: what is left open is not closed by the collector by chance."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_a_closed_stream_frees_its_place(redis_url: str, no_cycle_collector: None) -> None:
    from taskplane import Taskplane
    from taskplane.api import create_app

    tp = Taskplane("streams", api_max_streams_per_key=1)
    task_id = "closed-stream-1"  # a channel no other test's server listens to
    _, token = tp.api_keys.create("only", ["read"])
    tp.storage.client.hset(tp.storage.keys.record("normal", task_id), mapping={"state": "queued", "name": "t"})
    headers = {"Authorization": f"Bearer {token}"}
    app = create_app(tp)
    with serve_in_thread(app) as base_url, httpx.Client(headers=headers, timeout=30) as client:
        url = f"{base_url}{API}/tasks/{task_id}/events"
        with client.stream("GET", url) as first:
            lines = first.iter_lines()
            next(lines)
            with client.stream("GET", url) as refused:
                assert refused.status_code == 429
        deadline = time.monotonic() + 30
        while True:  # the server notices the closed connection at its next write (a keep-alive every 15 s)
            with client.stream("GET", url) as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "the closed stream kept its place"
            time.sleep(0.2)
        # The task ends: the last stream (its client gone) ends at its next read of the record, before the
        # server stops (one still open then was closed by the event loop's shutdown, leaving its socket)
        tp.storage.client.hset(tp.storage.keys.record("normal", task_id), "state", "succeeded")
        wait_for(lambda: app.state.stream_hub.open_streams == 0, 30, "the streams to end")
        channel = tp.storage.keys.events("normal", task_id)  # and the shared subscription lets the channel go
        wait_for(lambda: not tp.storage.client.pubsub_channels(channel), 30, "the channel to be unsubscribed")
