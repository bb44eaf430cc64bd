"""Workers outlive Redis: a private server is SIGKILLed and restarted on its data under load; every
acknowledged enqueue runs and no worker exits."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import redis

from taskplane import EmbeddedServer
from taskplane.redis.keys import Keys
from tests.e2e.producing import produce
from tests.workers import StartWorker, wait_for


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
        return [str(client.hget(Keys().record("normal", task_id), "state") or "missing") for task_id in ids]

    try:
        wait_for(lambda: all(state == "succeeded" for state in states()), 90, "every task to succeed")
    finally:
        print({state: states().count(state) for state in set(states())})
    assert all(worker.process.poll() is None for worker in workers), [w.log_path.read_text()[-1500:] for w in workers]
