"""Prometheus metrics: real workers (two hosts, prefork children) run known work, then ``/metrics`` on the
API and ``taskplane metrics`` are scraped and parsed with prometheus_client's own parser."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from taskplane import DeadLetter
from taskplane.api import create_app
from taskplane.middleware.metrics import Metrics
from taskplane.redis.keys import Keys
from taskplane.stack import free_port
from tests.api_server import serve_in_thread
from tests.apps.ops_app import add, boom, flaky, idle, limited, tp
from tests.workers import StartWorker, wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition: (sample name, labels) -> value."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: Samples, metric: str, **labels: str) -> float:
    """Sum of the samples called ``metric`` whose labels include ``labels`` (summing over the others)."""
    wanted = set(labels.items())
    return sum(value for (sample, have), value in samples.items() if sample == metric and wanted <= have)


def hostnames(samples: Samples, name: str) -> set[str]:
    return {dict(labels)["hostname"] for (sample, labels) in samples if sample == name}


def scrape(base_url: str, token: str) -> Samples:
    with httpx.Client(timeout=10) as client:
        response = client.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


@pytest.fixture
def api(redis_url: str) -> Iterator[tuple[str, str]]:
    _, token = tp.api_keys.create("prometheus", ["read"])
    with serve_in_thread(create_app(tp)) as base_url:
        yield base_url, token


def test_metrics_count_what_ran_on_two_worker_hosts(start_worker: StartWorker, api: tuple[str, str]) -> None:
    base_url, token = api
    # Given two worker hosts, one with two prefork children, consuming the "ops" queue
    first = start_worker(queues="ops", concurrency=2, app="tests.apps.ops_app:tp")
    second = start_worker(queues="ops", concurrency=1, app="tests.apps.ops_app:tp")
    # When known work runs: 10 successes, 2 final failures, one task that succeeds after 2 retries,
    # one rate-limited delivery, one cancelled task and one malformed message
    handles = [add.enqueue(i, i) for i in range(10)]
    handles += [boom.enqueue() for _ in range(2)]
    handles.append(flaky.enqueue("ops:flaky-attempts"))
    handles += [limited.enqueue(i) for i in range(2)]
    cancelled = add.enqueue_with((0, 0), countdown=1)
    tp.cancel(cancelled.id)
    tp.storage.client.lpush(Keys().queue("ops"), "this is not a kombu message")
    # ...and work that waits: 3 queued where nobody consumes (one with a message priority, so in a
    # priority sub-list), one delayed
    for _ in range(2):
        idle.enqueue()
    idle.apply_async(priority=9)
    idle.enqueue_with(countdown=600)
    tp.schedules.run("ops-hourly")
    leader = tp.scheduler(owner="metrics-test")
    leader.step()

    # One of the two limited tasks runs, the other waits a minute: which one depends on the workers' timing
    wait_for(lambda: all(tp.handle(h.id).record().done for h in handles[:-2]), 60, "the work to finish")

    def one_ran_one_waits() -> bool:
        records = [tp.handle(h.id).record() for h in handles[-2:]]
        waiting = [r for r in records if not r.done and r.fields.get("waiting_for") == "rate_limit"]
        return sum(r.done for r in records) == 1 and len(waiting) == 1

    wait_for(one_ran_one_waits, 60, "one limited task to run and the other to wait for the rate limit")
    # every process writes what it counted once a second
    started_total = 10 + 2 + 3 + 1 + 1  # add, boom, flaky attempts, limited (first), the scheduled add

    seen: list[tuple[float, ...]] = []

    def counted() -> bool:
        samples = scrape(base_url, token)
        counts = tuple(
            total(samples, metric)
            for metric in (
                "celery_task_received_total",
                "celery_task_revoked_total",
                "celery_task_started_total",
                "celery_task_runtime_count",
                "celery_task_sent_total",  # by this process's own buffer, within the second
            )
        )
        seen.append(counts)
        return counts == (12 + 2 + 1 + 2 + 1 + 1, 1, started_total, 11 + 3 + 2 + 1, 12 + 2 + 1 + 2 + 4)

    wait_for(counted, 20, "the counts of every process")

    samples = scrape(base_url, token)

    # Then the task counters match what ran, summed over both hosts and all pool children
    assert total(samples, "celery_task_sent_total", name="ops.add") == 12  # 10 + cancelled + the schedule's
    assert total(samples, "celery_task_sent_total", name="ops.idle") == 4
    assert total(samples, "celery_task_started_total") == started_total
    assert total(samples, "celery_task_succeeded_total", name="ops.add") == 11
    assert total(samples, "celery_task_succeeded_total", name="ops.flaky") == 1
    assert total(samples, "celery_task_failed_total", name="ops.boom", exception="ValueError") == 2
    assert total(samples, "celery_task_failed_total", name="ops.add") == 0
    assert total(samples, "celery_task_retried_total", name="ops.flaky") == 2
    assert total(samples, "taskplane_retries_total", name="ops.flaky") == 2
    assert total(samples, "taskplane_rate_limited_total", name="ops.limited") >= 1
    assert total(samples, "celery_task_revoked_total", name="ops.add") == 1
    assert total(samples, "celery_task_rejected_total", queue_name="ops") == 1
    assert total(samples, "celery_task_received_total", name="ops.add", queue_name="ops") == 12
    # every attempt that ran has a runtime; every start has a queue wait
    assert total(samples, "celery_task_runtime_count", name="ops.add") == 11
    assert total(samples, "celery_task_runtime_count", name="ops.flaky") == 3
    assert total(samples, "celery_task_runtime_bucket", name="ops.add", le="+Inf") == 11
    assert total(samples, "taskplane_task_queue_wait_seconds_count") == started_total
    assert total(samples, "taskplane_task_queue_wait_seconds_sum", name="ops.add") < 11 * 30
    # only the workers' own names appear as hosts of worker-side counters
    assert hostnames(samples, "celery_task_started_total") <= {first.hostname, second.hostname}

    # And the state gauges match Redis
    assert total(samples, "taskplane_dead_letters", queue="ops") == 3  # 2 failures + the malformed message
    assert (
        tp.storage.client.llen(Keys().queue("ops_backlog")) == 2
    )  # the plain list alone misses the priority message...
    assert total(samples, "celery_queue_length", queue_name="ops_backlog") == 3  # ...the metric counts it
    assert total(samples, "celery_queue_length", queue_name="ops") == 0
    assert total(samples, "taskplane_delayed", queue="ops_backlog") == 1
    assert total(samples, "celery_worker_up", hostname=first.hostname) == 1
    assert total(samples, "celery_worker_up", hostname=second.hostname) == 1
    assert total(samples, "taskplane_scheduler_leader") == 1
    last_run = total(samples, "taskplane_schedule_last_run_timestamp", schedule="ops-hourly")
    assert abs(last_run - time.time()) < 120
    assert total(samples, "taskplane_redis_up") == 1

    # A worker that stops cleanly leaves the gauges; the leader that releases its lease is reported gone
    second.stop()
    leader.release()
    samples = scrape(base_url, token)
    assert second.hostname not in hostnames(samples, "celery_worker_up")
    assert total(samples, "taskplane_scheduler_leader") == 0


def test_metrics_need_a_read_key(api: tuple[str, str]) -> None:
    base_url, _ = api
    with httpx.Client(timeout=10) as client:
        assert client.get(f"{base_url}/metrics").status_code == 401


@pytest.fixture
def exporter(redis_url: str, repo_root: Path, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    processes: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(url: str) -> str:
        port = free_port()
        logs.append(open(tmp_path / f"exporter-{port}.log", "w"))  # noqa: SIM115 - closed at teardown
        process = subprocess.Popen(
            [sys.executable, "-m", "taskplane", "metrics", "-A", "tests.apps.ops_app:tp", "--port", str(port)],
            cwd=repo_root,
            env={**os.environ, "TASKPLANE_REDIS_URL": url},
            stdout=logs[-1],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append(process)
        base_url = f"http://127.0.0.1:{port}"

        def answering() -> bool:
            try:
                with httpx.Client(timeout=2) as client:
                    return client.get(f"{base_url}/metrics").status_code == 200
            except httpx.HTTPError:
                assert process.poll() is None, (tmp_path / f"exporter-{port}.log").read_text()
                return False

        wait_for(answering, 30, "the exporter")
        return base_url

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(15)
        assert process.returncode == 0
    for log in logs:
        log.close()


def test_standalone_exporter_reports_the_same_cluster_state(exporter: Callable[[str], str], redis_url: str) -> None:
    for i in range(3):
        add.enqueue(i, 1)
    idle.enqueue()
    tp.dead_letters.add(_letter("ops"))
    tp.celery.chain.find(Metrics).flush()  # enqueues are counted within the second; now, for this test
    base_url = exporter(redis_url)
    with httpx.Client(timeout=10) as client:
        samples = parse(client.get(f"{base_url}/metrics").text)
    assert total(samples, "celery_task_sent_total", name="ops.add") == 3
    assert total(samples, "celery_queue_length", queue_name="ops") == 3
    assert total(samples, "celery_queue_length", queue_name="ops_backlog") == 1
    assert total(samples, "taskplane_dead_letters", queue="ops") == 1
    assert total(samples, "taskplane_redis_up") == 1


def test_exporter_reports_redis_down_instead_of_failing(exporter: Callable[[str], str]) -> None:
    port = free_port()  # nothing listens here
    base_url = exporter(f"redis://127.0.0.1:{port}/0")
    with httpx.Client(timeout=20) as client:
        response = client.get(f"{base_url}/metrics")
    assert response.status_code == 200
    samples = parse(response.text)
    assert total(samples, "taskplane_redis_up") == 0
    assert not any(name.startswith("celery_") for name, _ in samples)


def _letter(queue: str) -> DeadLetter:
    now = int(time.time() * 1000)
    return DeadLetter(
        id="letter-1",
        name="ops.add",
        queue=queue,
        reason="failed",
        exception_type="ValueError",
        first_failure_ms=now,
        last_failure_ms=now,
    )


def test_a_scrape_costs_the_same_number_of_redis_commands_however_many_tasks_exist(redis_url: str) -> None:
    from taskplane.observability.prometheus import render

    registry = tp.metrics_registry()
    client = tp.storage.client

    def commands_of_one_scrape() -> int:
        before = sum(stats["calls"] for stats in client.info("commandstats").values())
        render(registry)
        after = sum(stats["calls"] for stats in client.info("commandstats").values())
        return int(after - before)

    for i in range(10):
        add.enqueue(i, i)
    tp.celery.chain.find(Metrics).flush()
    small = commands_of_one_scrape()
    for i in range(2000):
        add.enqueue(i, i)
    tp.celery.chain.find(Metrics).flush()  # not during the scrape below
    assert tp.storage.client.zcard(tp.storage.keys.index_state("ops", "queued")) == 2010
    assert commands_of_one_scrape() == small
    assert small < 20 * len(tp.topology.names())


def test_totals_sum_over_hosts_and_a_host_silent_for_a_day_is_dropped(redis_url: str) -> None:
    from taskplane.stores.metrics import HOST_RETENTION

    metrics = tp.stores.metrics
    for host in ("celery@a", "celery@b", "celery@gone"):
        metrics.write(metrics.changes(host).count("taskplane_retries_total", "ops.flaky", amount=2))
    keys = tp.storage.keys
    tp.storage.client.zadd(keys.metrics_hosts(), {"celery@gone": time.time() - HOST_RETENTION - 60})

    totals = metrics.read()

    assert totals[("taskplane_retries_total", "ops.flaky")] == 4  # a and b; gone is no longer counted
    assert not tp.storage.client.exists(keys.metrics("celery@gone"))
    assert tp.storage.client.zscore(keys.metrics_hosts(), "celery@gone") is None
