"""``make bench``: taskplane side by side with plain Celery and Dramatiq on one embedded server.

Every figure comes from one run on this machine: the systems take turns over several rounds (so a noisy
moment does not land on one system only) and the medians are reported, as a table and as JSON.

- enqueue: one producer process, one call per task (``noop.enqueue(i)``, ``.delay(i)``, ``.send(i)``)
- batch enqueue: ``tp.enqueue_many`` (taskplane only)
- drain: a filled queue, then N worker processes started; tasks per second until the last one ran,
  worker start included
- Redis commands and round trips per enqueue and per executed task, from ``INFO commandstats`` and
  ``total_reads_processed``; the worker figures are marginal (a run of 2n tasks minus a run of n), so
  start-up and idle polling cancel out
- worker RSS before and after 100,000 delayed tasks; Redis memory per retained task record
- HTTP enqueue latency at 200 requests/s, and the highest rate whose p99 stays under 10 ms
- dashboard page loads in headless Chromium with 1,000,000 task records and 100,000 dead letters
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from benchmarks import cluster_bench, dashboard_load, footprint, http_load
from benchmarks.load import WARM_UP
from benchmarks.systems import SYSTEMS, System, drain, enqueue
from taskplane.redis.embedded import EmbeddedServer

ORDER = ("taskplane", "celery", "dramatiq")
CONCURRENCY = (1, 2, 4)
PARTS = ("throughput", "commands", "memory", "http", "dashboard", "cluster")


def own_commands(client: Any) -> int:
    """Commands this benchmark's own connection sent so far (its polling must not count)."""
    info = client.execute_command("CLIENT", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    return int(text.split("tot-cmds=")[1].split()[0])


def measured(client: Any, action: Callable[[], object]) -> tuple[int, int]:
    """(commands, round trips) the systems sent while ``action`` ran, from ``INFO commandstats`` and
    ``total_reads_processed``, minus what this benchmark's own connection sent."""
    client.config_resetstat()
    before = own_commands(client)
    action()
    own = own_commands(client) - before
    stats = client.info("commandstats")
    reads = int(client.info("stats")["total_reads_processed"])
    commands = sum(int(value["calls"]) for value in stats.values())
    # Our own: the RESETSTAT, the polling, the CLIENT INFO calls and the two INFO reads just made.
    return commands - own - 3, reads - own - 3


def per_task(system: System, client: Any, env: dict[str, str], count: int) -> dict[str, float]:
    """Commands and round trips per enqueue and (marginal) per executed task."""
    client.flushall()
    commands, reads = measured(client, lambda: enqueue(system.name, "single", count, env))
    result = {"enqueue_commands": commands / (count + WARM_UP), "enqueue_round_trips": reads / (count + WARM_UP)}
    runs = {}
    for n in (count, 2 * count):
        client.flushall()
        enqueue(system.name, "single", n, env)
        runs[n] = measured(client, lambda: drain(system, 2, client, env))
    result["task_commands"] = (runs[2 * count][0] - runs[count][0]) / count
    result["task_round_trips"] = (runs[2 * count][1] - runs[count][1]) / count
    return result


def throughput(client: Any, env: dict[str, str], tasks: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Enqueue and drain rates per system over ``rounds`` rounds, systems alternating."""
    rates: dict[str, dict[str, list[float]]] = {name: {} for name in ORDER}
    for round_index in range(rounds):
        order = ORDER[round_index % len(ORDER) :] + ORDER[: round_index % len(ORDER)]
        for name in order:
            system = SYSTEMS[name]
            for concurrency in CONCURRENCY:
                client.flushall()
                seconds = enqueue(name, "single", tasks, env)
                rates[name].setdefault("enqueue", []).append(tasks / seconds)  # every filling is an enqueue run
                rate = (tasks + WARM_UP) / drain(system, concurrency, client, env)
                rates[name].setdefault(f"drain_{concurrency}", []).append(rate)
                print(f"  round {round_index + 1} {name} -c {concurrency}: {rate:,.0f}/s", flush=True)
            if system.batch:  # taskplane: also at Celery's prefetch (4 per process), which gives up strict tiers
                client.flushall()
                enqueue(name, "single", tasks, env)
                prefetching = {**env, "TASKPLANE_PREFETCH_MULTIPLIER": "4"}
                rate = (tasks + WARM_UP) / drain(system, 2, client, prefetching)
                rates[name].setdefault("drain_2_prefetch_4", []).append(rate)
                print(f"  round {round_index + 1} {name} -c 2, prefetch 4: {rate:,.0f}/s", flush=True)
                client.flushall()
                rates[name].setdefault("batch_enqueue", []).append(tasks / enqueue(name, "batch", tasks, env))
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks per throughput run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delayed", type=int, default=100_000, help="delayed tasks for the worker RSS figure")
    parser.add_argument("--records", type=int, default=1_000_000, help="task records for the dashboard page loads")
    parser.add_argument("--quick", action="store_true", help="5,000 tasks, 1 round, 20,000 delayed, 100,000 records")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/latest.json"))
    parser.add_argument("--only", choices=PARTS, action="append")
    options = parser.parse_args()
    if options.quick:
        options.tasks, options.rounds, options.delayed, options.records = 5_000, 1, 20_000, 100_000
    parts = set(options.only or PARTS)
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "tasks": options.tasks,
        "rounds": options.rounds,
        "date": time.strftime("%Y-%m-%d"),
    }
    with tempfile.TemporaryDirectory(prefix="taskplane-bench-") as data_dir:
        server = EmbeddedServer(data_dir)
        url = server.start().url
        try:
            client = redis.Redis.from_url(url)
            client.config_set("appendonly", "no")  # the same for every system: no persistence
            report["server"] = client.info("server").get("valkey_version") or client.info("server")["redis_version"]
            env = {**os.environ, "TASKPLANE_REDIS_URL": url, "BENCH_REDIS_URL": url}
            if "throughput" in parts:
                print("throughput", flush=True)
                rates = throughput(client, env, options.tasks, options.rounds)
                report["throughput"] = {
                    name: {key: statistics.median(values) for key, values in figures.items()}
                    for name, figures in rates.items()
                }
            if "commands" in parts:
                print("commands", flush=True)
                report["commands"] = {name: per_task(SYSTEMS[name], client, env, 2_000) for name in ORDER}
            if "memory" in parts:
                print("memory", flush=True)
                report["memory"] = footprint.measure(client, env, options.delayed)
            if "http" in parts:
                print("http", flush=True)
                report["http"] = http_load.measure(env)
            if "dashboard" in parts:
                print("dashboard", flush=True)
                report["dashboard"] = dashboard_load.measure(client, env, options.records, options.records // 10)
            if "cluster" in parts:
                print("cluster", flush=True)
                report["cluster"] = cluster_bench.measure(Path(data_dir), options.tasks, options.rounds)
        finally:
            server.stop()
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(report, indent=2) + "\n")
    print(render(report))
    return 0


def render(report: dict[str, Any]) -> str:
    """The report as a Markdown table with ratios to plain Celery and Dramatiq."""
    from benchmarks.report import render as render_report

    return render_report(report)


if __name__ == "__main__":
    raise SystemExit(main())
