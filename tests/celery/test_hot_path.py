"""What one enqueue, one batch and one executed task cost in Redis, counted by the server itself
(``INFO commandstats`` and ``total_reads_processed``): a change that adds a command or a round trip to
the hot path fails here. Commands run inside a script count one by one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from taskplane.client.handle import TaskHandle
from tests.apps.core_app import add, roomy, tp, unique
from tests.workers import InProcessWorker, wait_for

N = 200


@dataclass
class Counts:
    """What the server did while a block ran (this test's own INFO and CONFIG calls left out)."""

    commands: int = 0
    round_trips: int = 0
    by_name: dict[str, int] | None = None


@contextmanager
def counted(redis_url: str) -> Iterator[Counts]:
    client = redis.Redis.from_url(redis_url)
    client.config_resetstat()
    counts = Counts()
    yield counts
    stats = client.info("commandstats")
    reads = int(client.info("stats")["total_reads_processed"])
    ours = ("cmdstat_info", "cmdstat_config")
    counts.by_name = {name: int(v["calls"]) for name, v in stats.items() if not name.startswith(ours)}
    counts.commands = sum(counts.by_name.values())
    counts.round_trips = reads - 3  # the RESETSTAT and the two INFO calls
    client.close()


def test_one_enqueue_is_one_round_trip(redis_url: str) -> None:
    add.enqueue(0, 0)  # scripts loaded, connections open
    with counted(redis_url) as counts:
        for i in range(N):
            add.enqueue(i, i)
    assert counts.round_trips <= N + 2, counts  # (+ the metric buffer's flush, if its second came up)
    # EVALSHA; the publish's own claim (SET NX: a resend of it writes nothing); the record: HMGET, HSET,
    # ZADD x3 (name, queue, state), EXPIRE; the message: LPUSH, and its bell: LPUSH. The sent count is added
    # up in this process and written once a second.
    assert counts.commands <= 10 * N + 5, counts


def test_an_enqueue_with_an_idempotency_key_or_uniqueness_is_one_round_trip(redis_url: str) -> None:
    add.enqueue(0, 0)
    with counted(redis_url) as keyed:
        for i in range(N):
            tp.enqueue("t.add", [i, i], idempotency_key=f"key-{i}")
    # The key is claimed inside the publish script: SET NX, then the record, the message...
    assert keyed.round_trips <= N + 2, keyed
    with counted(redis_url) as locked:
        for i in range(N):
            unique.enqueue(f"item-{i}")
    assert locked.round_trips <= N + 2, locked
    # A replay and a held lock answer with the first task, in the same one round trip, and publish nothing
    first = tp.enqueue("t.add", [0, 0], idempotency_key="key-0")
    again = unique.enqueue("item-0")
    assert first.existing and again.existing
    with counted(redis_url) as replays:
        tp.enqueue("t.add", [0, 0], idempotency_key="key-0")
        unique.enqueue("item-0")
    assert replays.round_trips <= 2, replays
    assert replays.by_name is not None and "cmdstat_lpush" not in replays.by_name


def test_a_batch_writes_100_messages_per_script_and_6_commands_per_message(redis_url: str) -> None:
    add.enqueue(0, 0)
    with counted(redis_url) as counts:
        tp.enqueue_many("t.add", [[i, i] for i in range(1000)])
    # Five pipelines of two scripts, each writing 100 records and pushing 100 messages in one LPUSH. The
    # server reads a large pipeline in pieces of at most 16 KiB (more of them when it reads while the data
    # still arrives), so it counts dozens of reads, where one round trip per message would count 1,000
    assert counts.by_name is not None and counts.by_name["cmdstat_evalsha"] == 10, counts
    assert counts.by_name["cmdstat_lpush"] == 2 * 10, counts  # the messages and the bell, once per script
    assert counts.round_trips < 300, counts
    # Per message: the record (HMGET, HSET, EXPIRE, ZADD x3); per script: its own claim (SET), LPUSH x2, LTRIM
    assert counts.commands <= 6 * 1000 + 5 * 10 + 5, counts


#: The commands of a task's own path through the worker (the rest is housekeeping, or this test's polling).
TASK_PATH = ("evalsha", "eval", "lmpop", "hset", "zadd", "hdel", "zrem", "hmget", "publish", "set")


def run_counted(
    redis_url: str, worker_in_process: InProcessWorker, enqueue: Callable[[int], TaskHandle]
) -> tuple[Counts, list[TaskHandle], float]:
    """Start a worker, then count what the server does while ``N`` tasks queued by ``enqueue`` run to their
    acknowledgement; returns the counts, the handles, and the worker's round trips per task (the
    enqueues' one each and this test's polling left out)."""
    worker_in_process(tp)
    add.enqueue(0, 0).wait(timeout=20)  # the worker is up and idle
    with counted(redis_url) as counts:
        handles = [enqueue(i) for i in range(N)]
        wait_for(lambda: all(h.record().done for h in handles[-3:]), 30, "the tasks to run")
        wait_for(lambda: tp.storage.client.hlen(tp.storage.keys.unacked("normal")) == 0, 10, "the last acknowledgement")
    assert counts.by_name is not None
    polls = sum(counts.by_name.get(f"cmdstat_{name}", 0) for name in ("hgetall", "hlen"))
    return counts, handles, (counts.round_trips - N - polls) / N


def test_an_executed_task_costs_2_round_trips_and_17_commands(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    counts, _, worker_trips = run_counted(redis_url, worker_in_process, lambda i: add.enqueue(i, i))
    assert counts.by_name is not None
    calls = {name: counts.by_name.get(f"cmdstat_{name}", 0) for name in TASK_PATH}
    # The enqueues' own commands (one EVALSHA each, the rest inside it) are not the worker's
    calls["evalsha"] -= N + 1
    calls["hmget"] -= N
    calls["hset"] -= N
    calls["zadd"] -= 5 * N
    calls["lpush"] = 0
    calls["set"] -= N  # the publishes' own claims
    ran = calls["set"]  # Celery's result meta: one SET per task that succeeded
    assert ran == N, counts
    # A fetch that finds every queue empty (the worker ends idle, as it began) is not a task's: EVALSHA, LMPOP
    idle_fetches = max(calls["lmpop"] - ran, 0)
    calls["evalsha"] -= idle_fetches
    calls["lmpop"] -= idle_fetches
    per_task = sum(calls.values()) / ran
    # Fetch (EVALSHA, LMPOP, HSET, ZADD; the acknowledgement rides on the next one: HDEL, ZREM) with the
    # start in it (HMGET, HSET, ZREM, PUBLISH), end (EVAL, HMGET, HSET, ZADD, PUBLISH, and Celery's result:
    # SET, PUBLISH)
    # 17; the issue allows 20, but a command added to every task must fail here (periodic housekeeping
    # of the worker adds a few hundredths)
    assert per_task <= 17.5, (per_task, calls)
    # Round trips: a fetch (which starts the task), the end per task; the issue allows 4, but a round trip
    # added to every task must fail here
    assert worker_trips <= 2.25, (worker_trips, counts)


def test_a_unique_task_releases_its_lock_with_its_final_writes(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    counts, handles, worker_trips = run_counted(redis_url, worker_in_process, lambda i: unique.enqueue(f"released-{i}"))
    # The same 2 round trips as any task: the lock goes with the final record, not in one of its own
    assert worker_trips <= 2.25, (worker_trips, counts)
    # ...and it is gone: an equal call is a new task
    assert unique.enqueue("released-0").id != handles[0].id


def test_a_rate_limited_task_reserves_its_slot_in_the_start_write(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    counts, _, worker_trips = run_counted(redis_url, worker_in_process, roomy.enqueue)
    assert counts.by_name is not None
    assert counts.by_name.get("cmdstat_set", 0) >= 2 * N  # a slot (SET of the limit's state) and a result each
    # 3 round trips: its process starts it (the fetch does not: the slot is keyed by its arguments), and the
    # slot is taken by that start write, not in a round trip of its own
    assert worker_trips <= 3.25, (worker_trips, counts)
    # Besides the fetches (one LMPOP each), an EVALSHA each for the enqueue and the start
    assert counts.by_name["cmdstat_evalsha"] - counts.by_name["cmdstat_lmpop"] >= 2 * N
