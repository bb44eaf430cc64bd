"""The ACL rule docs/operations.md gives for a dedicated Redis user is enough to run tasks end to end."""

from __future__ import annotations

from urllib.parse import urlparse

import redis

from taskplane import Taskplane
from taskplane.middleware.metrics import Metrics
from tests.workers import StartWorker

RULE = "on >acl-test-pass ~* &* +@all -@admin -@dangerous"


def test_a_worker_and_producer_run_with_the_documented_acl_user(start_worker: StartWorker, redis_url: str) -> None:
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", "taskplane-acl", *RULE.split())  # type: ignore[no-untyped-call]
    try:
        parsed = urlparse(redis_url)
        user_url = f"redis://taskplane-acl:acl-test-pass@{parsed.hostname}:{parsed.port}/0"
        denied = redis.Redis.from_url(user_url)
        try:
            denied.execute_command("CONFIG", "GET", "maxmemory")  # type: ignore[no-untyped-call]
            raise AssertionError("the ACL user may run admin commands")
        except redis.exceptions.NoPermissionError:
            pass
        finally:
            denied.close()
        start_worker(queues="ops", env={"TASKPLANE_REDIS_URL": user_url}, app="tests.apps.ops_app:tp")
        # a producer connected as that user (declaring the worker's task by name and signature)
        producer = Taskplane("acl-producer", redis_url=user_url, queues={"ops": "normal"})

        @producer.task(name="ops.add", queue="ops")
        def add(a: int, b: int) -> int:
            raise AssertionError("runs in the worker")

        handle = add.enqueue(2, 3)
        assert handle.result(timeout=30) == 5
        assert producer.handle(handle.id).record().state == "succeeded"
        # its counts written while the user exists (else its buffer warns on every later flush in this process)
        producer.celery.chain.find(Metrics).flush()
    finally:
        admin.execute_command("ACL", "DELUSER", "taskplane-acl")  # type: ignore[no-untyped-call]
        admin.close()
