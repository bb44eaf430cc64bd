"""A full server (``maxmemory``, no eviction) refuses every write while workers drain: nothing that was
acknowledged is lost, no delivery is acknowledged without its outcome, and a worker started while the
server is full waits for memory instead of exiting."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import redis

from taskplane import EmbeddedServer
from taskplane.redis.keys import Keys
from tests.e2e.producing import produce
from tests.workers import StartWorker, wait_for


def waits_for_memory(log: Path) -> bool:
    """True once a worker's log says it waits for memory."""
    return "the worker waits for memory" in log.read_text()


def test_a_full_server_loses_nothing_and_stops_no_worker(
    private_server: EmbeddedServer, start_worker: StartWorker, repo_root: Path
) -> None:
    info = private_server.info()
    assert info is not None
    client = redis.Redis.from_url(info.url, decode_responses=True)
    env = {"TASKPLANE_REDIS_URL": info.url, "TASKPLANE_LEASE_TIMEOUT": "6"}
    # Given 300 queued tasks (each writes its events to Redis, retried on Redis errors) and a worker draining
    ids = produce(info.url, 300, repo_root)
    first = start_worker(concurrency=2, env=env, ready=False)
    wait_for(lambda: client.llen("test:events") >= 40, 60, "some tasks to run")
    # When the server is full (every write refused) and a second worker starts meanwhile
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) // 2)
    try:
        second = start_worker(concurrency=2, env=env, ready=False)
        for log in (first.log_path, second.log_path):
            wait_for(partial(waits_for_memory, log), 60, f"{log.name} to wait")
        # ...and waits, without restarting its consumer over and over (Celery restarts it at once, and a
        # starting consumer's first write is refused again: hundreds of restarts a minute)
        time.sleep(5)
        for worker in (first, second):
            assert worker.log_path.read_text().count("Connection to broker lost") <= 8  # 0.25 s, doubling
        with_memory = [client.hget(Keys().record("normal", task_id), "state") for task_id in ids]
    finally:
        client.config_set("maxmemory", 0)

    # Then, once memory returns, every task succeeds and both workers still run
    def states() -> list[str]:
        return [str(client.hget(Keys().record("normal", task_id), "state") or "missing") for task_id in ids]

    try:
        wait_for(lambda: all(state == "succeeded" for state in states()), 120, "every task to succeed")
    finally:
        print({state: states().count(state) for state in set(states())}, "while full:", set(with_memory))
    assert first.process.poll() is None and second.process.poll() is None, second.log_path.read_text()[-2000:]
