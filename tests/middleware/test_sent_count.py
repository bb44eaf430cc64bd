"""The sent count: added up in the producer process once a message is out, written within the second; an
enqueue that found its task already queued, or that failed, is not counted."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from taskplane import RedisUnavailableError, Taskplane
from taskplane.core.protocol import Metric
from taskplane.middleware.metrics import Metrics
from taskplane.redis.embedded import EmbeddedServer
from tests.apps.core_app import add, tp
from tests.workers import wait_for


def sent(app: Taskplane, name: str) -> float:
    return sum(value for key, value in app.stores.metrics.read().items() if key[:2] == (Metric.SENT, name))


def test_enqueues_are_counted_within_the_second_without_a_command_each(redis_url: str) -> None:
    for i in range(3):
        add.enqueue(i, i)
    wait_for(lambda: sent(tp, "t.add") == 3, 5, "the buffer's own flush")


def test_an_enqueue_that_found_its_task_is_not_counted(redis_url: str) -> None:
    first = tp.enqueue("t.add", (1, 2), idempotency_key="sent-once")
    again = tp.enqueue("t.add", (1, 2), idempotency_key="sent-once")
    assert again.existing and again.id == first.id
    tp.celery.chain.find(Metrics).flush()
    assert sent(tp, "t.add") == 1


def test_a_failed_enqueue_is_not_counted_and_a_count_outlives_an_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An in-process worker started earlier in this pytest process (Celery's test worker) leaves the root
    # logger at ERROR: the warnings asserted here need their logger's own level
    caplog.set_level(logging.WARNING, logger="taskplane.metrics")
    server = EmbeddedServer(tmp_path)
    app = Taskplane("sent-tests", redis_url=server.start().url)

    @app.task(name="sent.noop")
    def noop() -> None: ...

    try:
        noop.enqueue()
        server.stop()
        with pytest.raises(RedisUnavailableError):
            noop.enqueue()
        for _ in range(2):
            app.celery.chain.find(Metrics).flush()  # fails: kept for the next flush
        server.start()  # same port, password and data
        app.celery.chain.find(Metrics).flush()
        assert sent(app, "sent.noop") == 1
        logged = [r.getMessage() for r in caplog.records if r.name == "taskplane.metrics"]
        assert len([m for m in logged if m.startswith("could not write metrics")]) == 1, logged  # once an outage
        assert logged[-1] == "metrics written again"
    finally:
        server.stop()


def test_enqueues_the_server_refused_are_not_counted_single_or_batch(redis_url: str) -> None:
    add.enqueue(0, 0)
    client = tp.storage.client
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)  # every write is refused (OOM) until it is lifted
    try:
        with pytest.raises(RedisUnavailableError, match=r"refuses writes: .*maxmemory"):
            add.enqueue(1, 1)
        with pytest.raises(RedisUnavailableError, match=r"refuses writes: .*maxmemory"):
            add.enqueue_many([[i, i] for i in range(1200)])  # collected in chunks, sent afterwards
    finally:
        client.config_set("maxmemory", 0)
    tp.celery.chain.find(Metrics).flush()
    assert sent(tp, "t.add") == 1
    add.enqueue_many([[i, i] for i in range(1200)])
    tp.celery.chain.find(Metrics).flush()
    assert sent(tp, "t.add") == 1201
