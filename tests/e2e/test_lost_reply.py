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
from taskplane.redis.keys import Keys
from tests.e2e.reply_proxy import ReplyProxy

ENQUEUE_ON_GO = """
import json, sys, time
from tests.apps.core_app import add, tp
def enqueue(task_id):
    if sys.argv[1] == "celery":  # through Celery's producer (a link is not a plain call)
        return add.apply_async((1, 2), task_id=task_id, link=add.s(5)).id
    if sys.argv[1] in ("batch", "unique batch"):  # 3 round trips of 200, 200 and 50
        name = "t.add" if sys.argv[1] == "batch" else "t.unique"
        items = [[task_id, i] for i in range(450)] if name == "t.add" else [[f"{task_id}-{i}"] for i in range(450)]
        return [handle.id for handle in tp.enqueue_many(name, items)]
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


def assert_queued_once(client: redis.Redis, how: str, outcome: Any) -> None:
    """The enqueue's task (each of a batch's 450) is queued once and recorded ``queued``, and nothing else
    is queued but the warm-up's as many."""
    ids = outcome if how.endswith("batch") else [outcome]
    assert isinstance(ids, list) and len(set(ids)) == (450 if how.endswith("batch") else 1), outcome
    queued = queued_ids(client)
    assert sorted(task_id for task_id in queued if task_id in set(ids)) == sorted(ids)
    assert len(queued) == 2 * len(ids)
    assert {client.hget(Keys().record("normal", task_id), "state") for task_id in ids} == {"queued"}


WAYS = ["direct", "celery", "batch", "unique batch"]


@pytest.mark.parametrize("how", WAYS)
def test_a_publish_that_went_out_but_lost_its_reply_is_done_once(
    proxied: tuple[ReplyProxy, redis.Redis, str], repo_root: Path, how: str
) -> None:
    proxy, client, url = proxied
    # Given a producer whose connection delivers the publish but loses its reply
    report = enqueue_through(url, repo_root, proxy.drop_replies, how)
    # Then the check on a new connection finds the publish's own claim: the caller gets its task, queued once
    assert not str(report["outcome"]).startswith("RedisUnavailableError"), report
    assert_queued_once(client, how, report["outcome"])
    assert report["waited"] < SOCKET_TIMEOUT + RESOLVE_TIMEOUT + 5, report


@pytest.mark.parametrize("how", WAYS)
def test_a_publish_that_did_not_arrive_is_fenced_and_sent_once_more(
    proxied: tuple[ReplyProxy, redis.Redis, str], repo_root: Path, how: str
) -> None:
    proxy, client, url = proxied
    # Given a producer whose publish is held on the way (no reply either)
    report = enqueue_through(url, repo_root, proxy.hold_requests, how)
    # Then the check fences the first send off and a second send queues the task
    assert not str(report["outcome"]).startswith("RedisUnavailableError"), report
    assert_queued_once(client, how, report["outcome"])
    assert report["waited"] < 2 * SOCKET_TIMEOUT + RESOLVE_TIMEOUT + 5, report
    # When the first send reaches the server late, it runs and writes nothing
    runs = int(client.info("commandstats")["cmdstat_evalsha"]["calls"])
    assert proxy.deliver_held() > 0
    deadline = time.monotonic() + 10
    while int(client.info("commandstats")["cmdstat_evalsha"]["calls"]) == runs and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int(client.info("commandstats")["cmdstat_evalsha"]["calls"]) > runs
    time.sleep(0.5)  # the rest of a held pipeline, if any
    assert_queued_once(client, how, report["outcome"])


@pytest.mark.parametrize("how", ["direct", "batch"])
def test_a_publish_whose_check_gets_no_answer_either_is_reported_as_maybe_queued(
    proxied: tuple[ReplyProxy, redis.Redis, str], repo_root: Path, how: str
) -> None:
    proxy, client, url = proxied
    # Given a server that takes requests and never answers, on any connection
    report = enqueue_through(url, repo_root, proxy.drop_every_reply, how)
    # Then the caller hears, after the send's timeout and the check's, that the outcome is unknown
    outcome = str(report["outcome"])
    assert outcome.startswith("RedisUnavailableError") and "nor its check within 3 s" in outcome, report
    assert "may still be queued (once" in outcome and "\n" not in outcome, report
    assert report["waited"] < SOCKET_TIMEOUT + RESOLVE_TIMEOUT + 2, report
    # and the publish, which reached the server, is queued once (the check found its claim); a batch's
    # later chunks were not sent
    queued = queued_ids(client)
    assert len(set(queued)) == len(queued) == (450 + 200 if how == "batch" else 2)
