"""The drain of this checkout against an earlier commit's, side by side on one server: which change cost it.

    python -m benchmarks.ab_drain 5e9fba0 --rounds 4 -c 4

Checks the commit out into a git worktree under a temporary directory, starts one embedded server (no
persistence), and alternates: fill a queue with ``--tasks`` tasks, drain it with ``taskplane worker -c N`` of
that tree (its ``src`` first on ``PYTHONPATH``, this checkout's virtual environment). Prints each round's rate
and CPU per task (the server's ``used_cpu``, the worker's main process, its pool processes) and the server's
most costly commands per task (``INFO commandstats``, nested commands included), then the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: Run in each tree (its own benchmarks package): one fill and drain, measured; prints one JSON line. It uses
#: only what ``benchmarks.systems`` has had since 2026-12-06 (``Worker``, ``enqueue``), not ``drain``, which
#: cannot report the worker's processes while it waits: an earlier tree runs it unchanged.
ROUND = """
import json, os, sys, time
import psutil, redis
from benchmarks.systems import SYSTEMS, Worker, enqueue
client = redis.Redis.from_url(os.environ["TASKPLANE_REDIS_URL"], decode_responses=True)
tasks, concurrency = int(sys.argv[1]), int(sys.argv[2])
client.flushall()
enqueue("taskplane", "single", tasks, dict(os.environ))
system = SYSTEMS["taskplane"]
client.config_resetstat()
before = client.info("cpu")
began = time.perf_counter()
worker = Worker(system, concurrency, dict(os.environ))
main, pool, own = psutil.Process(worker.process.pid), {}, None
try:
    while system.remaining(client) > 0:
        for child in main.children(recursive=True):
            try:
                pool[child.pid] = child.cpu_times()
            except psutil.NoSuchProcess:
                pass
        own = main.cpu_times()
        time.sleep(0.05)
    seconds = time.perf_counter() - began
finally:
    worker.stop()
after = client.info("cpu")
stats = client.info("commandstats")
server = after["used_cpu_sys"] + after["used_cpu_user"] - before["used_cpu_sys"] - before["used_cpu_user"]
top = sorted(((value["usec"], name.removeprefix("cmdstat_")) for name, value in stats.items()), reverse=True)[:5]
print(json.dumps({
    "rate": tasks / seconds,
    "server_ms": server / tasks * 1000,
    "main_ms": (own.user + own.system) / tasks * 1000 if own else 0.0,
    "pool_ms": sum(t.user + t.system for t in pool.values()) / tasks * 1000,
    "top_us": {name: round(usec / tasks, 1) for usec, name in top},
}))
"""


def one_round(tree: Path, env: dict[str, str], tasks: int, concurrency: int) -> dict[str, Any]:
    """One fill and drain with ``tree``'s code; what :data:`ROUND` printed."""
    tree_env = {**env, "PYTHONPATH": f"{tree / 'src'}:{tree}"}  # its taskplane before the installed one
    done = subprocess.run(
        [sys.executable, "-c", ROUND, str(tasks), str(concurrency)],
        cwd=tree,
        env=tree_env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commit", help="the earlier commit to compare with (any git revision)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("-c", "--concurrency", type=int, default=4)
    options = parser.parse_args()
    import redis

    from taskplane.redis.embedded import EmbeddedServer

    with tempfile.TemporaryDirectory(prefix="taskplane-ab-") as where:
        earlier = Path(where) / "earlier"
        subprocess.run(["git", "worktree", "add", "--detach", str(earlier), options.commit], cwd=ROOT, check=True)
        server = EmbeddedServer(Path(where) / "data")
        try:
            url = server.start().url
            with redis.Redis.from_url(url) as client:
                client.config_set("appendonly", "no")  # as make bench: no persistence
            env = {**os.environ, "TASKPLANE_REDIS_URL": url, "BENCH_REDIS_URL": url}
            trees = {options.commit: earlier, "this checkout": ROOT}
            results: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
            for index in range(options.rounds):
                for name, tree in trees.items():
                    measured = one_round(tree, env, options.tasks, options.concurrency)
                    results[name].append(measured)
                    print(f"round {index + 1} {name}: {json.dumps(measured)}", flush=True)
            for name, runs in results.items():
                medians = {key: statistics.median(run[key] for run in runs) for key in runs[0] if key != "top_us"}
                print(f"median {name}: " + ", ".join(f"{key} {value:,.3f}" for key, value in medians.items()))
        finally:
            server.stop()
            subprocess.run(["git", "worktree", "remove", "--force", str(earlier)], cwd=ROOT, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
