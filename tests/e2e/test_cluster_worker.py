"""A worker on a 3-primary Valkey Cluster with replicas on loopback (issue 26): queues spread over the nodes and
drained, each queue fetched on a lane of its own to its node, Celery's result backend and remote control over
the cluster, a dead letter requeued within and across nodes, a primary killed or frozen under load, or a
queue's slot moved to another node, losing nothing that was acknowledged, and a frozen primary holding up no
other queue's fetch."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from benchmarks.cluster import LocalCluster
from taskplane import Taskplane
from taskplane.redis.client import SOCKET_TIMEOUT
from tests.workers import WorkerProcess, wait_for

#: The worker's queues: with the default prefix their slots are served by the three primaries (checked below).
QUEUES = ["critical", "normal", "low", "reports"]
#: The lease of the workers the fault test starts (seconds).
LEASE = 6.0


def cluster_url(cluster: LocalCluster) -> str:
    first, second = cluster.primary_ports()[:2]
    return f"redis+cluster://:{cluster.password}@127.0.0.1:{first},127.0.0.1:{second}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("cluster"), primaries=3, replicas=1) as started:
        yield started


def cluster_app(url: str) -> Taskplane:
    """The test's app on the cluster, declaring the worker's tasks it sends (``tests/apps/core_app.py``)."""
    tp = Taskplane("core-tests", queues={"reports": "low"}, redis_url=url)

    @tp.task(name="t.add")
    def add(a: int, b: int) -> int:
        return a + b

    @tp.task(name="t.mark")
    def mark(tag: str) -> str:
        return tag

    @tp.task(name="t.paced")
    def paced(count: int, pause: float) -> int:
        return count

    @tp.task(name="t.not_retryable")
    def not_retryable() -> None:
        raise KeyError("missing")

    return tp


def start_worker(
    url: str, repo_root: Path, log_dir: Path, tp: Taskplane, concurrency: int = 2, lease: float | None = None
) -> WorkerProcess:
    env = {"TASKPLANE_REDIS_URL": url} | ({"TASKPLANE_LEASE_TIMEOUT": str(lease)} if lease else {})
    worker = WorkerProcess(repo_root, ",".join(QUEUES), concurrency, env, log_dir)
    try:
        wait_for(lambda: any(w["hostname"] == worker.hostname for w in tp.workers.live()), 30, "the worker's heartbeat")
    except TimeoutError:
        worker.discard()
        raise AssertionError(f"worker not ready: {worker.log_path.read_text()[-3000:]}") from None
    return worker


def node_of(tp: Taskplane, key: str) -> int:
    return int(tp.storage.client.get_node_from_key(key).port)


def test_a_worker_drains_queues_spread_over_every_node(cluster: LocalCluster, repo_root: Path, tmp_path: Path) -> None:
    url = cluster_url(cluster)
    tp = cluster_app(url)
    keys = tp.storage.keys
    assert {node_of(tp, keys.queue(queue)) for queue in QUEUES} == set(cluster.primary_ports())
    worker = start_worker(url, repo_root, tmp_path, tp)
    try:
        # An enqueue writes its record with the message (publish.lua), also on a cluster: a queue no worker takes
        waiting = tp.enqueue("t.add", args=(1, 2), queue="high")
        assert getattr(tp.status(waiting.id), "state", None) == "queued"
        handles = [tp.enqueue("t.add", args=(index, 1), queue=QUEUES[index % 4]) for index in range(40)]
        for index, handle in enumerate(handles):
            record = handle.wait(timeout=30)
            assert record.state == "succeeded", record
            assert record.queue == QUEUES[index % 4]
            assert handle.result() == index + 1
        # Each queue's records and lists are on its own node: the keys of the run are on every primary
        assert {node_of(tp, keys.record(QUEUES[i % 4], h.id)) for i, h in enumerate(handles)} == set(
            cluster.primary_ports()
        )
        # Celery's own result backend and remote control work over the cluster
        assert tp.celery.AsyncResult(handles[0].id).get(timeout=10) == 1
        assert any(worker.hostname in reply for reply in tp.celery.control.ping(timeout=3) or [])
        # Nothing is left in flight on any queue
        assert wait_for(lambda: not any(tp.storage.client.hlen(keys.unacked(queue)) for queue in QUEUES), 10)
        checked = subprocess.run(
            [sys.executable, "-m", "taskplane", "check"],
            env={"TASKPLANE_REDIS_URL": url, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=repo_root,
        )
        assert checked.returncode == 0, checked.stderr
    finally:
        worker.stop()
    assert "Traceback" not in worker.log_path.read_text()


def test_the_api_streams_a_tasks_events_from_its_queues_node(
    cluster: LocalCluster, repo_root: Path, tmp_path: Path
) -> None:
    from taskplane.api import create_app
    from tests.api.test_api import read_events
    from tests.api_server import serve_in_thread

    url = cluster_url(cluster)
    tp = cluster_app(url)
    _, token = tp.api_keys.create(f"cluster-{time.time_ns()}", ["admin"])
    headers = {"Authorization": f"Bearer {token}"}
    worker = start_worker(url, repo_root, tmp_path, tp)
    collected: list[dict[str, Any]] = []
    try:
        with serve_in_thread(create_app(tp)) as base_url:
            for queue in ("reports", "critical"):  # on two different nodes
                answer = httpx.post(
                    f"{base_url}/api/v1/tasks",
                    json={"task": "t.paced", "args": [3, 0.3], "queue": queue},
                    headers=headers,
                )
                assert answer.status_code == 202, answer.text
                with httpx.stream("GET", answer.json()["links"]["events"], headers=headers, timeout=60) as response:
                    events = read_events(response)
                states = [event["data"]["state"] for event in events if event["event"] == "state"]
                assert states[-1] == "succeeded" and "progress" in states, states
                collected.extend(events)
    finally:
        worker.stop()
    assert collected
    assert "Traceback" not in worker.log_path.read_text()


@dataclass
class Run:
    """What a run under load counted: enqueues acknowledged (task id, tag) and refused, runs per tag, and the
    acknowledged tasks whose record did not say succeeded by the end of the wait."""

    acknowledged: list[tuple[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    runs: collections.Counter[str] = field(default_factory=collections.Counter)
    unfinished: list[str] = field(default_factory=list)

    @property
    def lost(self) -> list[str]:
        return [tag for _, tag in self.acknowledged if not self.runs[tag]]

    def __str__(self) -> str:
        return (
            f"acknowledged {len(self.acknowledged)}, refused {len(self.refused)}, lost {len(self.lost)}, "
            f"ran twice {sum(1 for count in self.runs.values() if count > 1)}, "
            f"unfinished records {len(self.unfinished)}"
        )


def under_load(tp: Taskplane, worker: WorkerProcess, fault: Callable[[], None], queues: list[str]) -> Run:
    """Enqueue ``t.mark`` tasks over ``queues`` every 10 ms while ``fault`` runs (from 2 s in), then wait for
    every acknowledged one to finish (30 s and two leases at most) and stop ``worker``."""
    run = Run()
    stop = threading.Event()

    def produce() -> None:
        index = 0
        while not stop.is_set():
            tag = f"m{index}"
            try:
                run.acknowledged.append((tp.enqueue("t.mark", args=(tag,), queue=queues[index % len(queues)]).id, tag))
            except Exception as exc:  # refused: never acknowledged
                run.refused.append(f"{type(exc).__name__}: {exc}")
            index += 1
            time.sleep(0.01)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        try:
            time.sleep(2)
            fault()
        finally:
            stop.set()
            producer.join(30)
        unfinished = [task_id for task_id, _ in run.acknowledged]
        deadline = time.monotonic() + 30 + 2 * LEASE
        tags = {tag for _, tag in run.acknowledged}
        while unfinished and time.monotonic() < deadline:
            states = [getattr(tp.status(task_id), "state", None) for task_id in unfinished]
            unfinished = [task for task, state in zip(unfinished, states, strict=True) if state != "succeeded"]
            ran = {str(event["tag"]) for event in _events(tp) if event["kind"] == "mark"}
            if tags <= ran:  # every one ran: a record still unfinished two leases on will stay so
                deadline = min(deadline, time.monotonic() + 2 * LEASE)
            time.sleep(0.5)
        run.unfinished = unfinished
        run.runs.update(str(event["tag"]) for event in _events(tp) if event["kind"] == "mark")
    finally:
        worker.stop()
    print(run, [(task, getattr(tp.status(task), "state", None)) for task in run.unfinished[:5]])
    return run


def lost_report(tp: Taskplane, run: Run, worker: WorkerProcess, **context: object) -> str:
    """What a failure says about the lost tasks: their states, then ``context`` and the worker's log's end."""
    ids = {tag: task_id for task_id, tag in run.acknowledged}
    states = [(tag, getattr(tp.status(ids[tag]), "state", None)) for tag in run.lost[:10]]
    return f"lost {states}; {context}; refused {run.refused[:3]}; log {worker.log_path.read_text()[-3000:]}"


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_a_primary_killed_or_frozen_under_load_loses_nothing_acknowledged(
    repo_root: Path, tmp_path: Path, fault: str
) -> None:
    with LocalCluster(tmp_path / "cluster", primaries=3, replicas=1, node_timeout_ms=1000) as cluster:
        url = cluster_url(cluster)
        tp = cluster_app(url)
        # The victim serves a queue but not the list the tasks note their runs in (tests/apps/core_app.py): a
        # run noted on it just before the kill could be lost with it, and a task whose note meets the dead
        # node fails and retries a minute later; either would read as a lost task here.
        where = {queue: node_of(tp, tp.storage.keys.queue(queue)) for queue in QUEUES}
        victim = next(node for node in where.values() if node != node_of(tp, "test:events"))
        # A 6 s lease (as make chaos): what the victim had in flight returns within the wait below.
        worker = start_worker(url, repo_root, tmp_path, tp, concurrency=4, lease=LEASE)

        def kill_or_freeze() -> None:
            (cluster.kill if fault == "killed" else cluster.freeze)(victim)
            # Frozen past the clients' socket timeout: an enqueue it holds is resolved on the new primary (its
            # claim is fenced there) before the old one thaws. One that thaws sooner, after the failover,
            # answers what it holds and then drops it as it becomes a replica: docs/operations.md.
            time.sleep(8 if fault == "killed" else SOCKET_TIMEOUT + 2)
            if fault == "frozen":
                cluster.thaw(victim)  # back as a replica of the primary elected meanwhile

        run = under_load(tp, worker, kill_or_freeze, QUEUES)
        assert len(run.acknowledged) > 150
        assert not run.lost, lost_report(
            tp, run, worker, victim=victim, queues=where, events=node_of(tp, "test:events")
        )
        if fault == "killed":  # after a freeze a final record write can be lost with the primary: operations.md
            assert not run.unfinished, [(task, getattr(tp.status(task), "state", None)) for task in run.unfinished]


def test_a_queue_whose_slot_moves_to_another_node_under_load_loses_nothing(repo_root: Path, tmp_path: Path) -> None:
    """A resharding moves one queue's slot to another primary while tasks are enqueued and run (ASK and TRYAGAIN
    while its keys are split over two nodes, MOVED after): nothing acknowledged is lost or run twice, the queue
    is served from its new node, and an enqueue the cluster refused meanwhile says why in one line."""
    with LocalCluster(tmp_path / "cluster", primaries=3, replicas=0, persistence=False) as cluster:
        url = cluster_url(cluster)
        tp = cluster_app(url)
        keys = tp.storage.keys
        source = node_of(tp, keys.queue("normal"))
        target = next(port for port in cluster.primary_ports() if port != source)
        slot = int(tp.storage.client.keyslot(keys.queue("normal")))
        worker = start_worker(url, repo_root, tmp_path, tp, concurrency=4, lease=LEASE)
        moved: list[int] = []

        def move_slot() -> None:  # about 2 s: its records, indexes and lists, 5 keys at a time
            began = time.monotonic()
            moved.append(cluster.migrate(slot, target, batch=5, pause=0.05))
            print(f"moved {moved[0]} keys in {time.monotonic() - began:.1f} s")
            time.sleep(2)

        run = under_load(tp, worker, move_slot, ["normal", "normal", "low", "critical"])
        log = worker.log_path.read_text()
        assert moved[0] > 100  # the move spanned many steps while tasks came and went
        assert node_of(tp, keys.queue("normal")) == target
        assert len(run.acknowledged) > 200
        assert not run.lost, lost_report(tp, run, worker, source=source, target=target, slot=slot)
        assert not run.unfinished, [(task, getattr(tp.status(task), "state", None)) for task in run.unfinished]
        assert max(run.runs.values()) == 1, run
        assert all("slot it needs is moving" in refusal and "\n" not in refusal for refusal in run.refused), run.refused
        assert "its slot is moving between nodes" in log
        assert "Traceback" not in log


def test_a_message_whose_routing_key_names_another_nodes_queue_runs_under_its_own(
    cluster: LocalCluster, repo_root: Path, tmp_path: Path
) -> None:
    """A message in ``normal`` whose routing key names a queue on another node (a client's own route, a hand-made
    message) runs, under ``normal``. Before, the fetch wrote its start under the other queue's slot: the node
    refused the script after it had taken the messages, which were lost, and the worker stopped."""
    url = cluster_url(cluster)
    tp = cluster_app(url)
    keys, client = tp.storage.keys, tp.storage.client
    elsewhere = next(queue for queue in QUEUES if node_of(tp, keys.queue(queue)) != node_of(tp, keys.queue("normal")))
    odd = tp.enqueue("t.mark", args=("odd",), queue="normal")
    message = json.loads(client.rpop(keys.queue("normal")))
    message["properties"]["delivery_info"]["routing_key"] = elsewhere
    client.lpush(keys.queue("normal"), json.dumps(message))
    others = [tp.enqueue("t.mark", args=(f"other{index}",), queue="normal") for index in range(3)]
    worker = start_worker(url, repo_root, tmp_path, tp)
    try:
        for handle in [odd, *others]:
            assert handle.wait(timeout=30).state == "succeeded"
        assert client.hget(keys.record("normal", odd.id), "queue") == "normal"
        assert not client.exists(keys.record(elsewhere, odd.id))
        assert worker.process.poll() is None
    finally:
        worker.stop()
    assert "Traceback" not in worker.log_path.read_text()


def test_a_dead_letter_requeued_on_a_cluster_runs_again(cluster: LocalCluster, repo_root: Path, tmp_path: Path) -> None:
    """A requeue is the publish that does not fit ``publish.lua`` (a MULTI/EXEC taking the letter with the
    message): into its own queue one slot, into a queue on another node two single-slot steps. A step that
    spanned slots would be refused by the cluster (CROSSSLOT)."""
    url = cluster_url(cluster)
    tp = cluster_app(url)
    keys = tp.storage.keys
    assert node_of(tp, keys.queue("normal")) != node_of(tp, keys.queue("low"))
    worker = start_worker(url, repo_root, tmp_path, tp)
    try:
        for to_queue in ("normal", "low"):
            _dies_and_is_requeued(tp, worker, to_queue)
    finally:
        worker.stop()


def _dies_and_is_requeued(tp: Taskplane, worker: WorkerProcess, to_queue: str) -> None:
    keys = tp.storage.keys
    dead = tp.enqueue("t.not_retryable", queue="normal")

    def died_in(queue: str) -> bool:  # its letter, and its record (written after the letter: FailurePath.bury)
        letter = tp.dead_letters.get(dead.id, queue)
        return letter is not None and tp.storage.client.hget(keys.record(queue, dead.id), "state") == "dead"

    wait_for(lambda: died_in("normal"), 30, "it to die in normal")
    assert tp.dead_letters.requeue(ids=[dead.id], to_queue=to_queue) == [dead.id]
    # It ran again, in the queue it was sent to, and died there again (a KeyError is never retried)
    wait_for(lambda: died_in(to_queue), 30, f"it to die again in {to_queue}")
    assert worker.log_path.read_text().count(f"t.not_retryable[{dead.id}] received") == 2
    if to_queue != "normal":
        assert tp.dead_letters.get(dead.id, "normal") is None
        assert not tp.storage.client.exists(keys.record("normal", dead.id))


def test_a_frozen_node_holds_up_no_other_queue(repo_root: Path, tmp_path: Path) -> None:
    """The worker's main loop makes no call to a node at a time of its own choosing (the lease sweep, the
    lanes' lookups, rejections, returns of messages held ahead and kombu's binding refresh run in threads): a
    frozen primary holds up the fetch of its own queues only. Before, the sweep's first call to it held every
    queue's fetch for the socket timeout. (A task whose keys are on the frozen node, its queue's or Celery's
    result key, holds its pool process for the socket timeout: operations.md.)"""
    with LocalCluster(tmp_path / "cluster", primaries=3, replicas=1, node_timeout_ms=1000) as cluster:
        url = cluster_url(cluster)
        tp = cluster_app(url)
        where = {queue: node_of(tp, tp.storage.keys.queue(queue)) for queue in QUEUES}
        victim = next(node for node in where.values() if node != node_of(tp, "test:events"))
        others = [queue for queue, node in where.items() if node != victim]
        worker = start_worker(url, repo_root, tmp_path, tp, concurrency=4, lease=LEASE)  # a sweep every second
        try:
            for index, queue in enumerate(QUEUES):  # every lane is open and every queue swept
                assert tp.enqueue("t.add", args=(index, 1), queue=queue).wait(timeout=30).state == "succeeded"
            cluster.freeze(victim)
            try:
                time.sleep(1.5)  # the sweep has met the frozen node by now
                sent = [
                    (tp.enqueue("t.add", args=(n, 1), queue=others[n % len(others)]).id, others[n % len(others)])
                    for n in range(8)
                ]

                def fetched() -> list[str]:  # the fetch script marks a task started as it takes it
                    keys = tp.storage.keys  # (read under each task's queue: a status() looks at every queue's node)
                    try:
                        states = [
                            tp.storage.client.hget(keys.record(queue, task_id), "state") for task_id, queue in sent
                        ]
                    except redis.exceptions.ClusterDownError:  # every node refuses until the replica is elected
                        return []
                    return [str(state) for state in states if state not in (None, "queued")]

                # As many as the worker has processes, well within the socket timeout (10 s)
                wait_for(lambda: len(fetched()) >= 4, 4, "the other nodes' queues fetched while one is frozen")
            finally:
                cluster.thaw(victim)
        finally:
            worker.stop()


def _events(tp: Taskplane) -> list[dict[str, object]]:
    return [json.loads(item) for item in tp.storage.client.lrange("test:events", 0, -1)]
