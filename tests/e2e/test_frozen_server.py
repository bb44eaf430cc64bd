"""A server frozen (SIGSTOP) while an enqueue waits for its reply: the publish is never applied twice (a
resend finds the publish's own claim), and the caller waits a bounded time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from taskplane import EmbeddedServer
from taskplane.redis.client import SOCKET_TIMEOUT
from taskplane.redis.keys import Keys

FROZEN_ENQUEUE = """
import json, sys, time
from tests.apps.core_app import add, tp
add.enqueue(0, 0)  # connected, scripts loaded
print("ready", flush=True)
sys.stdin.readline()  # the server is frozen now
began = time.monotonic()
try:
    handle = tp.enqueue("t.add", [1, 2], task_id="frozen-1")
    outcome = handle.id
except Exception as exc:
    outcome = f"{type(exc).__name__}: {exc}"
print(json.dumps({"outcome": outcome, "waited": time.monotonic() - began}), flush=True)
"""


def test_an_enqueue_during_a_freeze_is_applied_once_and_waits_a_bounded_time(
    private_server: EmbeddedServer, repo_root: Path
) -> None:
    info = private_server.info()
    assert info is not None
    producer = subprocess.Popen(
        [sys.executable, "-c", FROZEN_ENQUEUE],
        env={**os.environ, "TASKPLANE_REDIS_URL": info.url},
        cwd=repo_root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert producer.stdin is not None and producer.stdout is not None
    try:
        assert producer.stdout.readline().strip() == "ready"
        # Given a server frozen for 15 s (past the 10 s socket timeout) while one enqueue waits for its reply
        os.kill(info.pid, signal.SIGSTOP)
        try:
            producer.stdin.write("go\n")
            producer.stdin.flush()
            time.sleep(15)
        finally:
            os.kill(info.pid, signal.SIGCONT)
        report = json.loads(producer.stdout.readline())
    finally:
        producer.kill()
        producer.wait()
        producer.stdin.close()
        producer.stdout.close()
    print(report)
    # Then the message is queued once, whatever the caller was told
    client = redis.Redis.from_url(info.url, decode_responses=True)
    deadline = time.monotonic() + 10
    while not client.exists(Keys().record("normal", "frozen-1")) and time.monotonic() < deadline:
        time.sleep(0.1)
    messages = [json.loads(item) for item in client.lrange("taskplane:normal", 0, -1)]
    assert [m["headers"]["id"] for m in messages].count("frozen-1") == 1, report
    # and the caller waited one socket timeout, then heard that the outcome is unknown (not a plain failure)
    assert report["waited"] < SOCKET_TIMEOUT + 5, report
    assert "did not answer within 10 s" in report["outcome"] and "may still be queued" in report["outcome"]
