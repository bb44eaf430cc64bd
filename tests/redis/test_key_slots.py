"""How many cluster hash slots each taskplane script's keys span, read with MONITOR from a real workload
(producer and worker processes). Valkey Cluster runs a script only when all its keys share one slot
(issue 26): this pins today's spread as a ceiling, so it can only shrink, down to one slot per script."""

from __future__ import annotations

import ast
import re
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import redis
from redis.crc import key_slot

from taskplane.redis.scripts import SCRIPT_NAMES, script_sha, script_source
from tests.apps.core_app import add, fails_until_fixed, not_retryable, tp, unique
from tests.workers import StartWorker, wait_for

ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')

#: The most one call of each script touched in the workload below, as (distinct slots of its keys, keys
#: it named that KEYS did not declare), measured 2026-12-07 once every key a queue owns shared its hash tag
#: (the in-flight hash and its lease index not yet: docs/architecture.md#keys). The fetch
#: takes from every queue of the worker in one call and names the keys of the tasks it starts in the script.
#: On Valkey Cluster every script must be (1, 0): the target of issue 26's layout per queue.
CEILING: dict[str, tuple[int, int]] = {
    "dead_add": (1, 0),
    "dead_take": (1, 0),  # a requeue to the letter's own queue (to another queue it spans two)
    "delayed_move": (1, 0),
    "fetch": (4, 3),  # 4 queues (one call takes from every queue of the worker; issue 26 step 2 splits it)
    "publish": (1, 0),
    "record_write": (1, 0),
    "unfetch": (1, 0),
}


#: Scripts the workload below calls.
CALLED = {"publish", "fetch", "record_write", "dead_add", "dead_take", "delayed_move"}


def parse(line: str) -> tuple[bool, list[bytes]]:
    """A MONITOR line: (whether a script ran it, its arguments as bytes)."""
    inside_script = "lua]" in line.split('"', 1)[0]
    return inside_script, [ast.literal_eval(f'b"{arg}"') for arg in ARG.findall(line)]


class Monitor:
    """Reads every command the server runs, on a connection of its own, until stopped."""

    def __init__(self, url: str) -> None:
        self.lines: list[str] = []
        self._client = redis.Redis.from_url(url)
        connection: Any = self._client.connection_pool.get_connection()
        self._connection = connection
        connection.send_command("MONITOR")
        assert self._connection.read_response() in (b"OK", "OK")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                line = self._connection.read_response()
            except (redis.ConnectionError, OSError, AttributeError):
                return
            self.lines.append(line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line))

    def caught_up(self, client: Any, timeout: float = 30) -> None:
        """Wait until this monitor has read every command the server ran before now (its reader may lag
        behind the server on a busy machine): a marker sent through ``client`` comes back to it."""
        marker = f"monitor-mark-{uuid.uuid4().hex}"
        client.echo(marker)
        wait_for(lambda: any(marker in line for line in tuple(self.lines)), timeout, "the monitor to catch up")

    def stop(self) -> None:
        self._connection.disconnect()
        self._thread.join(timeout=5)
        self._client.close()


#: Commands run inside scripts that name no key (PUBLISH names a channel), and those whose keys are not
#: just their first argument.
NO_KEY = {b"TIME", b"PUBLISH", b"ECHO", b"PING"}
ALL_KEYS = {b"DEL", b"UNLINK", b"EXISTS", b"MGET", b"TOUCH"}
COUNTED_KEYS = {b"LMPOP", b"ZMPOP", b"SINTERCARD", b"ZINTERCARD"}
TWO_KEYS = {b"RPOPLPUSH", b"LMOVE", b"SMOVE", b"RENAME", b"COPY"}


def inner_keys(args: list[bytes]) -> list[bytes]:
    """The keys a command run inside a script names."""
    command = args[0].upper()
    if command in NO_KEY or len(args) < 2:
        return []
    if command in ALL_KEYS:
        return args[1:]
    if command in COUNTED_KEYS:
        return args[2 : 2 + int(args[1])]
    if command in TWO_KEYS:
        return args[1:3]
    return args[1:2]


@dataclass
class Spread:
    """What the calls of one script touched, at most: distinct slots (of KEYS and of the keys its commands
    named), and keys its commands named that KEYS did not declare (built from ARGV)."""

    slots: int = 0
    undeclared: int = 0


def spread_by_script(lines: list[str]) -> dict[str, Spread]:
    """The most one call of each script touched (see :class:`Spread`)."""
    names = {script_sha(name).encode(): name for name in SCRIPT_NAMES}
    sources = {script_source(name).encode(): name for name in SCRIPT_NAMES}
    most: dict[str, Spread] = defaultdict(Spread)
    calls: list[tuple[str, set[bytes], set[bytes]]] = []  # (script, declared keys, keys its commands named)
    for line in lines:
        inside, args = parse(line)
        if not args:
            continue
        if inside:
            if calls:
                calls[-1][2].update(inner_keys(args))
            continue
        command = args[0].upper()
        if command not in (b"EVALSHA", b"EVAL"):
            continue
        name = names.get(args[1]) if command == b"EVALSHA" else sources.get(args[1])
        # (a script not taskplane's, e.g. a lock's, still takes the commands that follow it)
        calls.append((name or "", set(args[3 : 3 + int(args[2])]), set()))
    for name, declared, named in calls:
        if not name:
            continue
        seen = most[name]
        seen.slots = max(seen.slots, len({key_slot(key) for key in declared | named}))
        seen.undeclared = max(seen.undeclared, len(named - declared))
    return dict(most)


CLIENT = re.compile(r"\[\d+ ([^\]]+)\]")


def slots_of_steps(lines: list[str]) -> list[set[int]]:
    """The slots each step touched: every script call (its declared keys and those its commands named) and
    every MULTI/EXEC block (by client) in MONITOR's ``lines``."""
    steps: list[set[int]] = []
    blocks: dict[str, set[int]] = {}
    script: set[int] | None = None
    for line in lines:
        inside, args = parse(line)
        if not args:
            continue
        if inside:
            if script is not None:
                script.update(key_slot(key) for key in inner_keys(args))
            continue
        found = CLIENT.search(line)
        client = found.group(1) if found else ""
        command = args[0].upper()
        if command in (b"EVAL", b"EVALSHA"):
            script = {key_slot(key) for key in args[3 : 3 + int(args[2])]}
            steps.append(script)
        elif command == b"MULTI":
            blocks[client] = set()
        elif command == b"EXEC":
            steps.append(blocks.pop(client, set()))
        elif client in blocks:
            blocks[client].update(key_slot(key) for key in inner_keys(args))
    return steps


def fields(task_id: str) -> dict[str, Any]:
    record = tp.status(task_id)
    return dict(record.fields) if record is not None else {}


def state(task_id: str) -> str | None:
    record = tp.status(task_id)
    return record.state if record is not None else None


def test_each_scripts_keys_span_no_more_slots_than_today(redis_url: str, start_worker: StartWorker) -> None:
    monitor = Monitor(redis_url)
    try:
        start_worker(queues="critical,high,normal,low")
        # A workload that calls every script on the delivery path: enqueue, batch, countdown, uniqueness,
        # run, retry, dead letter, requeue
        assert add.enqueue(2, 3).result(timeout=30) == 5
        handles = tp.enqueue_many("t.add", [[i, i] for i in range(5)])
        delayed = add.enqueue_with((1, 1), countdown=0.5)
        unique.enqueue("one")
        unique.enqueue("one")
        retried = fails_until_fixed.enqueue("slots")
        dead = not_retryable.enqueue()
        for handle in [*handles, delayed]:
            handle.result(timeout=30)
        wait_for(lambda: state(dead.id) == "dead", 30, "a dead task")
        tp.dead_letters.requeue(ids=[dead.id])
        wait_for(lambda: int(fields(retried.id).get("attempts", 0)) >= 2, 30, "a retry")
        # the monitor's reader may lag behind the server on a busy machine
        wait_for(lambda: set(spread_by_script(list(monitor.lines))) >= CALLED, 30, f"calls of {sorted(CALLED)}")
    finally:
        monitor.stop()
    spread = spread_by_script(monitor.lines)
    print({name: (spread[name].slots, spread[name].undeclared) for name in sorted(spread)})
    for name, (slots, undeclared) in CEILING.items():  # (another test's leftover thread may call others)
        seen = spread.get(name, Spread())
        assert seen.slots <= slots and seen.undeclared <= undeclared, f"{name}: {seen}; ceiling {slots}, {undeclared}"
