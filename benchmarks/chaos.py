"""``make chaos``: fault runs against real workers and a private Valkey server, counting what was lost.

Each fault runs on its own embedded server (loopback only) with ``taskplane worker`` processes started
and stopped here by pid. Tasks (``benchmarks/chaos_app.py``) note in Redis that they finished, so the
table counts: enqueued, completed, lost (enqueued without error but never finished and not
dead-lettered), duplicates (finished more than once) and the recovery time. ``--quick`` runs smaller
loads (what CI can afford); the default is the size the reliability issue names.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from benchmarks.chaos_api import long_stream, slow_headers, stream_flood
from benchmarks.chaos_stack import ROOT, RUNNING, Outcome, Stack
from benchmarks.partition import PartitionProxy
from taskplane.redis.client import SOCKET_TIMEOUT
from taskplane.redis.keys import Keys


def worker_kills(directory: Path, tasks: int, every: float) -> Outcome:
    stack = Stack(directory)
    current = [stack.worker(), stack.worker()]
    stack.enqueue(tasks, 0.01)
    kills = 0
    began = time.monotonic()
    while stack.finished()[0] < tasks * 0.9 and time.monotonic() - began < 600:
        time.sleep(every)
        victim = current[kills % 2]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(10)
        stack.workers.remove(victim)  # killed on purpose, not down
        current[kills % 2] = stack.worker()
        kills += 1
    recovery = stack.wait(tasks, 120)
    return stack.outcome(f"kill -9 a worker every {every:g} s", tasks, recovery, f"{kills} kills")


def redis_kills(directory: Path, tasks: int, kills: int) -> Outcome:
    stack = Stack(directory)
    stack.worker()
    stack.worker()
    stack.enqueue(tasks, 0.02)
    recoveries = []
    for _ in range(kills):
        time.sleep(2.0)
        info = stack.server.info()
        if info is None:
            break
        os.kill(info.pid, signal.SIGKILL)
        time.sleep(0.5)
        stack.server.start()
        began = time.monotonic()
        before = stack.finished()[0]
        while stack.finished()[0] == before and time.monotonic() - began < 30 and before < tasks:
            time.sleep(0.1)
        recoveries.append(time.monotonic() - began)
    stack.wait(tasks, 120)
    note = f"{kills} kills, resume max {max(recoveries or [0]):.1f} s"
    return stack.outcome("Valkey SIGKILL + restart on AOF", tasks, max(recoveries or [0.0]), note)


def partitions(directory: Path, tasks: int, count: int, seconds: float) -> Outcome:
    stack = Stack(directory)
    info = stack.server.info()
    assert info is not None
    proxy = PartitionProxy(info.port)
    stack.worker()
    stack.worker(redis_url=stack.url.replace(f":{info.port}/", f":{proxy.port}/"))  # the one cut off
    stack.enqueue(tasks, 0.02)
    for _ in range(count):
        time.sleep(2.0)
        proxy.partition()
        time.sleep(seconds)
        proxy.heal()
    recovery = stack.wait(tasks, 120)
    proxy.close()
    return stack.outcome(f"{count} partitions of {seconds:g} s (one worker)", tasks, recovery, "loopback proxy")


def malformed(directory: Path) -> Outcome:
    sys.path.insert(0, str(ROOT))
    from tests.celery.test_malformed import KINDS

    stack = Stack(directory)
    stack.worker()
    binary = redis.Redis.from_url(stack.url)  # some kinds are bytes that are not UTF-8
    for number, item in enumerate(KINDS.values()):
        text = item if isinstance(item, str | bytes) else json.dumps(item)
        data = text.encode() if isinstance(text, str) else text
        data = data.replace(b"bad-1", b"bad-%d" % number)  # one dead letter per item
        binary.lpush(Keys().queue("normal"), data)  # through the queue
        late = data.replace(b"bad-", b"late-") + b" "  # differs from the queue's copy even without an id
        binary.zadd(Keys().delayed("normal"), {late: 1.0})  # and the delayed store
    binary.close()
    stack.enqueue(10)
    recovery = stack.wait(10 + 2 * len(KINDS), 60)
    note = f"{len(KINDS)} kinds, each through a queue and the delayed store"
    return stack.outcome("malformed queue items", 10 + 2 * len(KINDS), recovery, note)


def full_server(directory: Path, tasks: int, seconds: float) -> Outcome:
    """The server reaches ``maxmemory`` (noeviction) while workers drain, and a worker starts meanwhile."""
    stack = Stack(directory)
    stack.enqueue(tasks, 0.01)
    stack.worker()
    stack.worker()
    began = time.monotonic()
    while stack.finished()[0] < tasks // 10 and time.monotonic() - began < 60:
        time.sleep(0.05)
    stack.client.config_set("maxmemory-policy", "noeviction")
    stack.client.config_set("maxmemory", int(stack.client.info("memory")["used_memory"]) // 2)  # writes refused
    before = stack.finished()[0]
    stack.worker()  # started while the server is full: it waits for memory, it does not exit
    time.sleep(seconds)
    during = stack.finished()[0] - before
    stack.client.config_set("maxmemory", 0)
    recovery = stack.wait(tasks, 120)
    note = f"{before} done before, {during} while full; a worker started full"
    return stack.outcome(f"maxmemory reached for {seconds:g} s in a drain", tasks, recovery, note)


def killed_unique_batch(directory: Path, tasks: int) -> Outcome:
    """A producer SIGKILLed inside a batch enqueue of ``unique_for`` tasks, and the same batch enqueued again."""
    stack = Stack(directory)
    code = (
        "import sys; from benchmarks.chaos_app import unique_work\nunique_work.enqueue_many([[n] for n in range({})])"
    )
    producer = subprocess.Popen([sys.executable, "-c", code.format(tasks)], cwd=ROOT, env=stack.env)
    queue = Keys().queue("normal")
    while stack.client.llen(queue) < tasks // 10 and producer.poll() is None:
        time.sleep(0.002)
    producer.kill()
    producer.wait()
    first = stack.client.llen(queue)
    subprocess.run([sys.executable, "-c", code.format(tasks)], cwd=ROOT, env=stack.env, check=True, timeout=600)
    stack.worker()
    stack.worker()
    recovery = stack.wait(tasks, 300)
    return stack.outcome(
        "producer killed in a unique batch, sent again", tasks, recovery, f"{first} out before the kill"
    )


def frozen_enqueue(directory: Path, seconds: float) -> Outcome:
    """The server frozen (SIGSTOP) for ``seconds`` while one enqueue waits for its reply."""
    stack = Stack(directory)
    info = stack.server.info()
    assert info is not None
    code = (
        "import sys, time\nfrom benchmarks.chaos_app import work\nwork.enqueue(0)\nprint('ready', flush=True)\n"
        "sys.stdin.readline()\nbegan = time.monotonic()\n"
        "try:\n    work.enqueue(1)\nexcept Exception as exc:\n    print(type(exc).__name__, flush=True)\n"
        "print(f'{time.monotonic() - began:.1f}', flush=True)"
    )
    producer = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=stack.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert producer.stdin is not None and producer.stdout is not None
    producer.stdout.readline()
    os.kill(info.pid, signal.SIGSTOP)
    producer.stdin.write("go\n")
    producer.stdin.flush()
    time.sleep(seconds)
    os.kill(info.pid, signal.SIGCONT)
    told = producer.communicate(timeout=120)[0].split()
    stack.worker()
    recovery = stack.wait(2, 60)
    time.sleep(2.0)  # a second copy, if one went out, runs by now
    said = told[0] if len(told) > 1 else "its handle"  # an error's name, or nothing before the time
    return stack.outcome(
        f"Valkey frozen {seconds:g} s in an enqueue", 2, recovery, f"caller waited {told[-1]} s, got {said}"
    )


#: A producer that enqueues ``count`` tasks over four queues at about 200 a second, and prints the numbers of
#: those whose enqueue was acknowledged (an enqueue that raised is counted as refused, not as lost).
PRODUCER = """
import json, time
from benchmarks.chaos_app import work
queues, acknowledged, refused = ["critical", "high", "normal", "low"], [], 0
for number in range({count}):
    try:
        work.enqueue_with((number, 0.01), queue=queues[number % 4])
        acknowledged.append(number)
    except Exception:
        refused += 1
    time.sleep(0.005)
print(json.dumps([acknowledged, refused]))
"""


#: Seconds the frozen primary stays frozen: past the clients' socket timeout (see docs/operations.md).
FROZEN = SOCKET_TIMEOUT + 2


#: The cluster faults, as the report names them.
CLUSTER_FAULTS = {
    "kill": "cluster primary SIGKILLed under load",
    "freeze": f"cluster primary frozen {FROZEN:g} s under load",
    "reshard": "cluster queue's slot moved under load",
}


def cluster_failover(directory: Path, tasks: int, fault: str) -> Outcome:
    """A 3-primary Valkey Cluster with replicas: the primary serving ``normal`` is SIGKILLed, or SIGSTOPped past
    the clients' socket timeout (then it comes back as a replica), or ``normal``'s slot is moved to another
    primary, while a producer enqueues over four queues and two workers drain. Recovery: until the last
    worker's fetch of ``normal`` had a node again (after a move: the new one)."""
    stack = Stack(directory, cluster=True)
    assert stack.cluster is not None
    stack.worker()
    stack.worker()
    victim = int(stack.client.get_node_from_key(Keys().queue("normal")).port)
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER.format(count=tasks)], cwd=ROOT, env=stack.env, stdout=subprocess.PIPE, text=True
    )
    time.sleep(3.0)
    faulted, how = time.time(), ""
    if fault == "reshard":  # normal's slot moved to another primary, 10 keys a step as valkey-cli reshard does
        slot = int(stack.client.keyslot(Keys().queue("normal")))
        moved = stack.cluster.migrate(slot, next(port for port in stack.cluster.primary_ports() if port != victim))
        how = f"; {moved} keys moved in {time.time() - faulted:.1f} s"
    else:
        (stack.cluster.kill if fault == "kill" else stack.cluster.freeze)(victim)
    if fault == "freeze":
        time.sleep(FROZEN)
        stack.cluster.thaw(victim)
    acknowledged, refused = json.loads(producer.communicate(timeout=600)[0])
    stack.wait(len(acknowledged), 180)
    recovery = _lane_back(stack, "normal", faulted)
    done = {int(number) for number in stack.client.smembers("{chaos}:done")}
    missing = len(set(acknowledged) - done)
    outcome = stack.outcome(
        CLUSTER_FAULTS[fault],
        len(acknowledged),
        recovery,
        f"{refused} enqueues refused; {missing} acknowledged never ran{how}",
    )
    outcome.lost = max(outcome.lost, missing - outcome.dead)
    return outcome


def _lane_back(stack: Stack, queue: str, since: float) -> float:
    """Seconds from ``since`` (wall clock) until the last worker's fetch of ``queue`` had a node again (from the
    workers' logs); -1 if a worker never said so."""
    backs = []
    for log in sorted(stack.directory.glob("worker-*.log")):
        said = [
            datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # the log's local time
            for line in log.read_text().splitlines()
            if f"the fetch of queue {queue!r} has a node again" in line
        ]
        backs.append(min((at for at in said if at >= since), default=-1.0))
    return -1.0 if not backs or min(backs) < 0 else max(backs) - since


def graceful_restarts(directory: Path, restarts: int, seconds: float) -> Outcome:
    stack = Stack(directory, {"TASKPLANE_SHUTDOWN_TIMEOUT": "0.5"})
    stack.enqueue(1, seconds)
    for _ in range(restarts):
        worker = stack.worker(1)
        time.sleep(3.0)
        os.kill(worker.pid, signal.SIGTERM)  # the main process: a graceful stop (bounded by 0.5 s here)
        worker.wait(30)
        stack.workers.remove(worker)  # stopped on purpose, not down
    stack.worker(1)
    recovery = stack.wait(1, seconds + 30)
    return stack.outcome(f"{restarts} graceful restarts in one {seconds:g} s task", 1, recovery)


FAULTS: dict[str, Callable[[Path, bool], Outcome]] = {
    "worker-kills": lambda d, quick: worker_kills(d, 2000 if quick else 20000, 5.0),
    "redis-kills": lambda d, quick: redis_kills(d, 1000 if quick else 5000, 2 if quick else 5),
    "partitions": lambda d, quick: partitions(d, 1000 if quick else 3000, 3, 8.0 if quick else 30.0),
    "malformed": lambda d, quick: malformed(d),
    "full-server": lambda d, quick: full_server(d, 3000, 10.0 if quick else 30.0),
    "unique-batch-kill": lambda d, quick: killed_unique_batch(d, 2000 if quick else 10000),
    "frozen-enqueue": lambda d, quick: frozen_enqueue(d, 25.0),
    # past the socket timeout, back within the check's 3 s: the publish is resolved as gone out
    "short-freeze": lambda d, quick: frozen_enqueue(d, 11.5),
    "stream-flood": lambda d, quick: stream_flood(d, 1500),
    "slow-headers": lambda d, quick: slow_headers(d, 500, 20.0),
    "long-stream": lambda d, quick: long_stream(d, 60.0 if quick else 300.0),
    "graceful": lambda d, quick: graceful_restarts(d, 3 if quick else 5, 8.0 if quick else 20.0),
    "cluster-kill": lambda d, quick: cluster_failover(d, 1500 if quick else 5000, "kill"),
    "cluster-freeze": lambda d, quick: cluster_failover(d, 1500 if quick else 5000, "freeze"),
    "cluster-reshard": lambda d, quick: cluster_failover(d, 1500 if quick else 5000, "reshard"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller loads")
    parser.add_argument("--only", choices=sorted(FAULTS), action="append", help="run only these faults")
    parser.add_argument("--json", type=Path, help="also write the results here")
    options = parser.parse_args()
    results: list[dict[str, Any]] = []
    for name in options.only or list(FAULTS):
        with tempfile.TemporaryDirectory(prefix=f"taskplane-chaos-{name}-") as directory:
            try:
                outcome = FAULTS[name](Path(directory), options.quick)
            finally:  # a fault that raised left its workers and server running
                for stack in list(RUNNING):
                    stack.stop()
        results.append(outcome.__dict__)
        print(
            f"{outcome.fault:<42} enqueued {outcome.enqueued:>6}  completed {outcome.completed:>6}  "
            f"dead {outcome.dead:>3}  lost {outcome.lost:>3}  duplicates {outcome.duplicates:>3}  "
            f"recovery {outcome.recovery_s:5.1f} s  workers down {outcome.workers_down}  {outcome.note}",
            flush=True,
        )
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))
    return 1 if any(result["lost"] or result["workers_down"] for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
