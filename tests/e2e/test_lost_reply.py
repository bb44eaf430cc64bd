"""A publish whose reply is lost is resolved by its id: it went out (done), or it did not (fenced off, so it
can never apply late, and sent once more). Either way one message, and the caller is told the task is queued."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from taskplane import EmbeddedServer
from taskplane.redis.client import RESOLVE_TIMEOUT, SOCKET_TIMEOUT
from tests.e2e.reply_proxy import ReplyProxy

ENQUEUE_ON_GO = """
import json, sys, time
from tests.apps.core_app import add, tp
def enqueue(task_id):
    if sys.argv[1] == "celery":  # through Celery's producer (a link is not a plain call)
        return add.apply_async((1, 2), task_id=task_id, link=add.s(5)).id
    return tp.enqueue("t.add", [1, 2], task_id=task_id).id
enqueue("warm-up")  # connected, scripts loaded
print("ready", flush=True)
sys.stdin.readline()  # the proxy loses this connection's replies now
began = time.monotonic()
try:
    outcome = enqueue("lost-1")
except Exception as exc:
    outcome = f"{type(exc).__name__}: {exc}"
print(json.dumps({"outcome": outcome, "waited": time.monotonic() - began}), flush=True)
"""


@pytest.fixture
def proxied(private_server: EmbeddedServer) -> Iterator[tuple[ReplyProxy, redis.Redis, str]]:
    """A proxy in front of a private server, a client straight to the server, and the proxy's URL."""
    info = private_server.info()
    assert info is not None
    proxy = ReplyProxy(info.port)
    client = redis.Redis.from_url(info.url, decode_responses=True)
    try:
        yield proxy, client, info.url.replace(f":{info.port}/", f":{proxy.port}/")
    finally:
        client.close()
        proxy.close()


def enqueue_through(url: str, repo_root: Path, fault: Callable[[], None], how: str) -> dict[str, Any]:
    """Run a producer on ``url``; once it is connected, apply ``fault`` and enqueue task lost-1 (``how``:
    ``direct``, taskplane's own publish, or ``celery``, Celery's producer)."""
    producer = subprocess.Popen(
        [sys.executable, "-c", ENQUEUE_ON_GO, how],
        env={**os.environ, "TASKPLANE_REDIS_URL": url},
        cwd=repo_root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert producer.stdin is not None and producer.stdout is not None
    try:
        assert producer.stdout.readline().strip() == "ready"
        fault()
        producer.stdin.write("go\n")
        producer.stdin.flush()
        report: dict[str, Any] = json.loads(producer.stdout.readline())
        return report
    finally:
        producer.kill()
        producer.wait()
        producer.stdin.close()
        producer.stdout.close()


def queued_ids(client: redis.Redis) -> list[str]:
    return [json.loads(item)["headers"]["id"] for item in client.lrange("taskplane:normal", 0, -1)]


@pytest.mark.parametrize("how", ["direct", "celery"])
def test_a_publish_that_went_out_but_lost_its_reply_is_done_once(
    proxied: tuple[ReplyProxy, redis.Redis, str], repo_root: Path, how: str
) -> None:
    proxy, client, url = proxied
    # Given a producer whose connection delivers the publish but loses its reply
    report = enqueue_through(url, repo_root, proxy.drop_replies, how)
    # Then the check on a new connection finds the publish's own claim: the caller gets its task, queued once
    assert report["outcome"] == "lost-1", report
    assert queued_ids(client).count("lost-1") == 1 and len(queued_ids(client)) == 2
    assert client.hget("taskplane:task:lost-1", "state") == "queued"
    assert report["waited"] < SOCKET_TIMEOUT + RESOLVE_TIMEOUT + 2, report


@pytest.mark.parametrize("how", ["direct", "celery"])
def test_a_publish_that_did_not_arrive_is_fenced_and_sent_once_more(
    proxied: tuple[ReplyProxy, redis.Redis, str], repo_root: Path, how: str
) -> None:
    proxy, client, url = proxied
    # Given a producer whose publish is held on the way (no reply either)
    report = enqueue_through(url, repo_root, proxy.hold_requests, how)
    # Then the check fences the first send off and a second send queues the task
    assert report["outcome"] == "lost-1", report
    assert queued_ids(client).count("lost-1") == 1
    assert report["waited"] < 2 * SOCKET_TIMEOUT + RESOLVE_TIMEOUT + 2, report
    # When the first send reaches the server late, it runs and writes nothing
    runs = int(client.info("commandstats")["cmdstat_evalsha"]["calls"])
    assert proxy.deliver_held() > 0
    deadline = time.monotonic() + 10
    while int(client.info("commandstats")["cmdstat_evalsha"]["calls"]) == runs and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int(client.info("commandstats")["cmdstat_evalsha"]["calls"]) == runs + 1
    assert queued_ids(client).count("lost-1") == 1 and len(queued_ids(client)) == 2
    assert client.hget("taskplane:task:lost-1", "state") == "queued"
