"""A worker cut off from Redis (a loopback proxy holding every byte) loses nothing; its work is done."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from benchmarks.partition import PartitionProxy
from taskplane import EmbeddedServer
from taskplane.redis.keys import Keys
from tests.e2e.producing import produce
from tests.workers import StartWorker, wait_for


def test_a_partitioned_worker_loses_nothing(
    private_server: EmbeddedServer, start_worker: StartWorker, repo_root: Path
) -> None:
    info = private_server.info()
    assert info is not None
    proxy = PartitionProxy(info.port)
    try:
        behind = info.url.replace(f":{info.port}/", f":{proxy.port}/")
        client = redis.Redis.from_url(info.url, decode_responses=True)
        env = {"TASKPLANE_LEASE_TIMEOUT": "6"}
        start_worker(concurrency=2, env={**env, "TASKPLANE_REDIS_URL": info.url}, ready=False)
        cut_off = start_worker(concurrency=2, env={**env, "TASKPLANE_REDIS_URL": behind}, ready=False)
        wait_for(lambda: client.zcard("taskplane:workers") == 2, 30, "both workers' heartbeats")
        ids = produce(info.url, 100, repo_root)
        wait_for(lambda: client.llen("test:events") > 20, 30, "tasks to run")
        # When one worker is cut off from Redis for longer than its deliveries' lease
        proxy.partition()
        time.sleep(8)
        proxy.heal()

        # Then every task succeeds (the other worker took over what the cut-off one held) and both run on
        def succeeded() -> bool:
            return all(client.hget(Keys().record("normal", task_id), "state") == "succeeded" for task_id in ids)

        wait_for(succeeded, 60, "every task to succeed")
        assert cut_off.process.poll() is None
    finally:
        proxy.close()
