"""``taskplane flower``: real Flower on the same app and broker sees a real worker and a finished task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from taskplane.stack import free_port
from tests.apps.ops_app import add
from tests.workers import StartWorker, wait_for

AUTH = ("ops", "secret-pass")


def test_flower_shows_the_worker_and_a_finished_task(
    start_worker: StartWorker, redis_url: str, repo_root: Path, tmp_path: Path
) -> None:
    worker = start_worker(queues="ops", concurrency=1, app="tests.apps.ops_app:tp")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "flower.log", "w") as log:
        flower = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "taskplane",
                "flower",
                "-A",
                "tests.apps.ops_app:tp",
                "--port",
                str(port),
                "--basic-auth",
                ":".join(AUTH),
            ],
            cwd=repo_root,
            env={**os.environ, "TASKPLANE_REDIS_URL": redis_url},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            with httpx.Client(base_url=base_url, auth=AUTH, timeout=15) as client:

                def get(path: str) -> httpx.Response | None:
                    assert flower.poll() is None, (tmp_path / "flower.log").read_text()
                    try:
                        return client.get(path)
                    except httpx.HTTPError:
                        return None

                wait_for(lambda: get("/healthcheck"), 30, "Flower to listen")
                # Flower's API refuses a request without the credentials
                assert httpx.get(f"{base_url}/api/workers", timeout=10).status_code == 401

                # Flower learns tasks from worker events: wait until its event receiver has heard the worker
                # (its heartbeat events), else a fast task's events could pass before Flower listens
                def heard_from_worker() -> bool:
                    response = get("/workers?json=1")
                    if response is None or response.status_code != 200:
                        return False
                    return worker.hostname in {entry.get("hostname") for entry in response.json()["data"]}

                wait_for(heard_from_worker, 30, "Flower to receive the worker's events")

                def worker_listed() -> dict[str, Any] | None:
                    response = get("/api/workers?refresh=1")
                    if response is None or response.status_code != 200:
                        return None
                    found: dict[str, Any] | None = response.json().get(worker.hostname)
                    return found

                info = wait_for(worker_listed, 30, "Flower to list the worker")
                assert "ops" in {queue["name"] for queue in info.get("active_queues", [])}
                broker_page = get("/broker")
                assert broker_page is not None and broker_page.status_code == 200, broker_page
                assert "not supported" not in broker_page.text and "redis://" in broker_page.text
                assert ">ops<" in broker_page.text.replace(" ", "").replace("\n", "")

                def task_seen(task_id: str) -> dict[str, Any] | None:
                    response = get(f"/api/task/info/{task_id}")
                    if response is None or response.status_code != 200:
                        return None
                    task = response.json()
                    return task if task.get("state") == "SUCCESS" else None

                # Task events are off until a monitor asks: Flower sends ``enable_events`` every 5 s, so
                # a task run from then on is seen
                def run_one_seen() -> dict[str, Any] | None:
                    handle = add.enqueue(20, 22)
                    assert handle.result(timeout=30) == 42
                    deadline = time.monotonic() + 2
                    while time.monotonic() < deadline:
                        if task := task_seen(handle.id):
                            return task
                        time.sleep(0.1)
                    return None

                task = wait_for(run_one_seen, 40, "Flower to turn task events on and show a finished task")
                assert task["name"] == "ops.add"
                assert task["worker"] == worker.hostname
                assert task["result"] == "42"
        finally:
            flower.send_signal(signal.SIGTERM)
            try:
                flower.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(flower.pid, signal.SIGKILL)
                flower.wait(5)


def test_flowers_broker_counts_the_default_priority_and_taskplane_every_priority(redis_url: str) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from flower.utils.broker import Broker

    from tests.apps.ops_app import tp

    for priority in (0, 0, 4, 9):
        add.apply_async((1, 2), priority=priority)  # no worker: they wait
    with tp.celery.connection() as connection:
        url = connection.as_uri(include_password=True)
    assert url.startswith("redis://")
    broker = Broker(url, broker_options=tp.celery.conf.broker_transport_options)
    # In a thread of its own: this process's main thread may hold a running loop (Playwright's sync API,
    # when a browser test ran in it first)
    with ThreadPoolExecutor(1) as thread:
        queues = thread.submit(asyncio.run, broker.queues(["ops"])).result(timeout=30)
    # Flower reads the lists kombu names; taskplane keeps the lists of priorities above 0 under the queue's
    # hash tag (one cluster slot per queue: Keys.queue), which Flower does not know. taskplane counts all.
    assert queues == [{"name": "ops", "messages": 2}]
    assert tp.queues.lengths(["ops"]) == {"ops": 4}
