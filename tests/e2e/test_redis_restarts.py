"""Workers outlive Redis: a private server is SIGKILLed and restarted on its data under load; every
acknowledged enqueue runs and no worker exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from taskplane import EmbeddedServer
from tests.workers import StartWorker, wait_for

PRODUCE = """
import json, sys
from tests.apps.core_app import resilient
ids = [resilient.enqueue(0.05, f"t{i}").id for i in range(int(sys.argv[1]))]
print(json.dumps(ids))
"""


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """An embedded server of its own (the session's must not be killed), stopped by its pid at the end."""
    server = EmbeddedServer(tmp_path / "private")
    server.start()
    yield server
    server.stop()


def produce(url: str, count: int, repo_root: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PRODUCE, str(count)],
        env={**os.environ, "TASKPLANE_REDIS_URL": url},
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    ids: list[str] = json.loads(result.stdout)
    return ids


def test_workers_reconnect_and_nothing_acknowledged_is_lost_across_redis_kills(
    private_server: EmbeddedServer, start_worker: StartWorker, repo_root: Path
) -> None:
    info = private_server.info()
    assert info is not None
    url = info.url
    client = redis.Redis.from_url(url, decode_responses=True)
    env = {"TASKPLANE_REDIS_URL": url, "TASKPLANE_LEASE_TIMEOUT": "6"}  # a dead delivery returns within 6 s
    workers = [start_worker(concurrency=2, env=env, ready=False) for _ in range(2)]
    wait_for(lambda: client.zcard("taskplane:workers") == 2, 30, "both workers' heartbeats")
    # Given tasks flowing through two workers
    ids = produce(url, 80, repo_root)
    for kill in range(2):
        wait_for(lambda: client.llen("test:events") > 10 * (kill + 1), 30, "tasks to run")  # noqa: B023
        # When the server is killed and comes back on its data (same port, append-only file)
        pid = (private_server.info() or info).pid
        os.kill(pid, signal.SIGKILL)
        time.sleep(1.0)
        restarted = private_server.start()
        assert restarted.port == info.port
        client = redis.Redis.from_url(url, decode_responses=True)

    # Then every task enqueued before the kills ran to success, and both workers are still running
    def states() -> list[str]:
        return [str(client.hget(f"taskplane:task:{task_id}", "state") or "missing") for task_id in ids]

    try:
        wait_for(lambda: all(state == "succeeded" for state in states()), 90, "every task to succeed")
    finally:
        print({state: states().count(state) for state in set(states())})
    assert all(worker.process.poll() is None for worker in workers), [w.log_path.read_text()[-1500:] for w in workers]
