"""``make bench``'s cluster part: the same enqueue and drain on one server and on a 3-primary Valkey Cluster (no
replicas, no persistence on either), with tasks spread over three queues whose slots are served by the three
primaries. On one machine the nodes share its CPUs, so this measures what the cluster path costs (routing,
one fetch lane per queue), not what more machines would add."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.cluster import LocalCluster
from benchmarks.systems import ROOT, SYSTEMS, Worker
from taskplane.redis.client import connect
from taskplane.redis.embedded import EmbeddedServer
from taskplane.redis.keys import Keys

#: With the default prefix these three queues' slots fall on three different primaries (0-5460, 5461-10922,
#: 10923-16383: the ranges ``valkey-cli --cluster create`` assigns to three primaries).
QUEUES = ("critical", "low", "reports")

PRODUCER = """
import json, sys, time
from benchmarks.bench_app import noop
queues, count = {queues!r}, {count}
for index in range(-30, 0):
    noop.enqueue_with((index,), queue=queues[index % 3])
began = time.perf_counter()
for index in range(count):
    noop.enqueue_with((index,), queue=queues[index % 3])
print(json.dumps({{"seconds": time.perf_counter() - began}}))
"""


def _remaining(client: Any) -> int:
    keys = Keys("taskplane:")
    return sum(
        sum(int(client.llen(name)) for name in keys.queue_lists(queue)) + int(client.hlen(keys.unacked(queue)))
        for queue in QUEUES
    )


def _run(url: str, tasks: int, concurrency: int) -> dict[str, float]:
    """Enqueue ``tasks`` (one call each, over the three queues), then drain them with one worker."""
    env = {**os.environ, "TASKPLANE_REDIS_URL": url}
    code = PRODUCER.format(queues=list(QUEUES), count=tasks)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    enqueue_seconds = float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
    client = connect(url)
    began = time.perf_counter()
    worker = Worker(SYSTEMS["taskplane"], concurrency, env)
    try:
        while _remaining(client) > 0:
            if worker.process.poll() is not None:
                raise SystemExit(f"the taskplane worker exited with {worker.process.returncode}")
            if time.perf_counter() - began > 600:
                raise SystemExit("the taskplane worker did not drain in 600 s")
            time.sleep(0.05)
        drain_seconds = time.perf_counter() - began
    finally:
        worker.stop()
        client.close()
    return {"enqueue": tasks / enqueue_seconds, "drain": (tasks + 30) / drain_seconds}


def measure(directory: Path, tasks: int, rounds: int, concurrency: int = 2) -> dict[str, Any]:
    """Enqueue and drain rates (medians of ``rounds``) on one server and on a 3-primary cluster."""
    rates: dict[str, dict[str, list[float]]] = {"one server": {}, "3-primary cluster": {}}
    for round_index in range(rounds):
        server = EmbeddedServer(directory / f"single-{round_index}")
        info = server.start()
        try:
            connect(info.url).config_set("appendonly", "no")
            for key, value in _run(info.url, tasks, concurrency).items():
                rates["one server"].setdefault(key, []).append(value)
        finally:
            server.stop()
        with LocalCluster(directory / f"cluster-{round_index}", primaries=3, replicas=0, persistence=False) as cluster:
            first = cluster.primary_ports()[0]
            url = f"redis+cluster://:{cluster.password}@127.0.0.1:{first}"
            for key, value in _run(url, tasks, concurrency).items():
                rates["3-primary cluster"].setdefault(key, []).append(value)
        print(f"  round {round_index + 1}: {rates}", flush=True)
    return {
        "tasks": tasks,
        "concurrency": concurrency,
        "queues": list(QUEUES),
        **{
            name: {key: statistics.median(values) for key, values in figures.items()} for name, figures in rates.items()
        },
    }
