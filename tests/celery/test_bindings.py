"""Every key taskplane writes is under the app's prefix, kombu's binding tables and (kombu 5.7) their deadlines
included, and kombu's sweep of expired binding tables finds them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Exchange, Queue
from packaging.version import Version

from tests.apps.core_app import add, tp
from tests.workers import StartWorker, wait_for


def test_a_worker_tasks_and_remote_control_write_only_prefixed_keys(redis_url: str, start_worker: StartWorker) -> None:
    # Given a worker that ran a task, answered remote control, and a delayed task
    worker = start_worker()
    assert add.enqueue(2, 3).result(timeout=30) == 5
    add.enqueue_with((1, 1), countdown=60)
    replies = tp.celery.control.ping(destination=[worker.hostname], timeout=10)  # ends at the reply
    assert replies and any(worker.hostname in reply for reply in replies), replies
    inspected = tp.celery.control.inspect(destination=[worker.hostname], timeout=10).active()
    assert inspected is not None and worker.hostname in inspected
    # Then every key in the server is under the app's prefix
    keys = sorted(key.decode() for key in redis.Redis.from_url(redis_url).scan_iter(count=1000))
    # (a queue's own keys start with its hash tag, {taskplane:<queue>}: Keys.tag)
    assert keys and [key for key in keys if not key.startswith(("taskplane:", "{taskplane:"))] == []
    assert any(key.startswith("taskplane:_kombu.binding.") for key in keys), keys


@pytest.mark.skipif(Version(version("kombu")) < Version("5.7.0"), reason="kombu expires binding tables from 5.7 on")
def test_kombus_sweep_deletes_an_expired_binding_table_under_the_prefix(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    with tp.celery.connection_for_write() as connection:
        channel: Any = connection.default_channel
        # Given a queue that expires (as Celery's remote-control replies do), bound to an exchange
        queue = Queue("answers", Exchange("probe", type="direct"), "answers", expires=1.0)
        queue(channel).declare()
        assert client.smembers("taskplane:_kombu.binding.probe")
        deadlines = "taskplane:_kombu.binding_deadlines"
        assert client.zscore(deadlines, "probe") is not None
        assert not client.exists("_kombu.binding_deadlines") and not client.keys("_kombu.binding_permanent*")
        # When its deadline has passed and kombu's sweep runs
        client.zadd(deadlines, {"probe": 1})
        assert channel.sweep_bindings() == 1
    # Then the table and its deadline are gone
    wait_for(lambda: not client.exists("taskplane:_kombu.binding.probe"), 5, "the table to go")
    assert client.zscore(deadlines, "probe") is None


HASH_TAG_PRODUCER = """
import json
from tests.apps.core_app import add, tp
result = add.enqueue(2, 3).result(timeout=30)  # the worker is up once it ran
replies = tp.celery.control.ping(timeout=10)
print(json.dumps({"result": result, "replies": len(replies)}))
"""


def test_a_hash_tag_prefix_runs_tasks_and_remote_control(
    redis_url: str, start_worker: StartWorker, repo_root: Path
) -> None:
    # Given a worker and a producer whose prefix is a cluster hash tag (kombu formats some names with
    # str.format: a brace in the prefix must not break them)
    env = {"TASKPLANE_KEY_PREFIX": "{tp}:"}
    start_worker(env=env, ready=False)  # (its heartbeat is under the prefix: the producer waits for it)
    done = subprocess.run(
        [sys.executable, "-c", HASH_TAG_PRODUCER],
        env={**os.environ, "TASKPLANE_REDIS_URL": redis_url, **env},
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then the task runs, the worker answers, and every key is under the prefix
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"result": 5, "replies": 1}, done
    keys = sorted(key.decode() for key in redis.Redis.from_url(redis_url).scan_iter(count=1000))
    assert keys and [key for key in keys if not key.startswith("{tp}:")] == []
