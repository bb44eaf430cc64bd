"""Two real scheduler processes; the leader is SIGKILLed. No slot fires twice; the other leads within the TTL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.apps.sched_app import RUNS, tp
from tests.workers import StartWorker, wait_for

LEASE_TTL = 4.0
TICK = 0.2


def start_scheduler(repo_root: Path, redis_url: str, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TASKPLANE_REDIS_URL": redis_url,
        "TASKPLANE_SCHEDULER_LEASE_TTL": str(LEASE_TTL),
        "TASKPLANE_SCHEDULER_TICK": str(TICK),
        "TASKPLANE_SCHEDULER_GRACE": "1.0",
    }
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "taskplane", "scheduler", "-A", "tests.apps.sched_app:tp"],
            cwd=repo_root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def leader_pid() -> int | None:
    leader = tp.schedules.leader()
    return int(leader.owner.split(":")[1]) if leader else None


def test_leader_killed_no_slot_fires_twice_and_the_other_takes_over_within_the_ttl(
    redis_url: str, repo_root: Path, tmp_path: Path, start_worker: StartWorker
) -> None:
    worker = start_worker(app="tests.apps.sched_app:tp", concurrency=2)
    first = start_scheduler(repo_root, redis_url, tmp_path / "first.log")
    first_pid = wait_for(leader_pid, timeout=30, what="a leader")
    assert first_pid == first.pid
    second = start_scheduler(repo_root, redis_url, tmp_path / "second.log")
    try:
        time.sleep(4)  # both run; the first leads and fires, the second waits
        before = tp.schedules.fires("every-second")
        assert len(before) >= 2 and {entry["epoch"] for entry in before} == {1}
        assert leader_pid() == first.pid

        os.killpg(first.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        first.wait(10)
        wait_for(lambda: leader_pid() == second.pid, timeout=LEASE_TTL + 5, what="the second scheduler to lead")
        takeover = time.monotonic() - killed_at
        leader = tp.schedules.leader()
        assert leader is not None and leader.epoch == 2
        # The lease is at most TTL old when the leader dies; the follower notices within one tick.
        assert takeover <= LEASE_TTL + TICK + 0.5, f"took {takeover:.2f}s"
        print(f"takeover {takeover:.2f}s after SIGKILL (lease TTL {LEASE_TTL}s, tick {TICK}s)")
        time.sleep(3)  # the new leader fires a few slots
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(15)
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
    assert second.returncode == 0
    assert tp.schedules.leader() is None  # SIGTERM released the lease

    every_second = list(reversed(tp.schedules.fires("every-second")))
    slots = [entry["slot_ms"] for entry in every_second]
    assert len(slots) == len(set(slots)) and slots == sorted(slots), "a slot fired twice"
    epochs = [entry["epoch"] for entry in every_second]
    assert epochs == sorted(epochs) and set(epochs) == {1, 2}
    # The slots missed while no one led were fired once, late, by the new leader.
    first_of_new_term = next(entry for entry in every_second if entry["epoch"] == 2)
    assert first_of_new_term["kind"] == "late"
    assert [entry["kind"] for entry in every_second].count("late") == 1
    # The skip schedule dropped its missed slot instead.
    skipper = list(reversed(tp.schedules.fires("skipper")))
    assert next(entry["kind"] for entry in skipper if entry["epoch"] == 2) == "skip"
    assert "late" not in {entry["kind"] for entry in skipper}

    # Every firing queued exactly one task, and the worker ran each exactly once.
    fired_ids = [entry["task_id"] for entry in every_second + skipper if entry["task_id"]]
    wait_for(lambda: len(tp.storage.client.lrange(RUNS, 0, -1)) >= len(fired_ids), what="every fired task to run")
    runs = [json.loads(item) for item in tp.storage.client.lrange(RUNS, 0, -1)]
    ran = Counter(run["task_id"] for run in runs)
    assert set(ran) == set(fired_ids) and max(ran.values()) == 1
    worker.stop()
