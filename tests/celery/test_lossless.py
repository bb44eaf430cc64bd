"""Lossless fetch and atomic enqueue, watched command by command with MONITOR on the real server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from taskplane.redis.keys import Keys
from taskplane.redis.scripts import Scripts
from tests.apps.core_app import add, tp
from tests.workers import InProcessWorker, wait_for

POPS = {"RPOP", "LPOP", "BRPOP", "BLPOP", "LMOVE", "BLMOVE", "RPOPLPUSH", "BRPOPLPUSH", "LMPOP", "BLMPOP"}
STOP = "taskplane-test-monitor-stop"


@contextmanager
def monitored(redis_url: str) -> Iterator[list[dict[str, Any]]]:
    """Every command the server runs while the block runs (script-internal ones have client_type 'lua')."""
    seen: list[dict[str, Any]] = []
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    ready = threading.Event()

    def watch() -> None:
        with client.monitor() as monitor:  # type: ignore[no-untyped-call]
            ready.set()
            while True:
                command = monitor.next_command()
                if STOP in command["command"]:
                    return
                seen.append(command)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield seen
    finally:
        client.echo(STOP)
        thread.join(10)
        client.close()


def test_a_message_leaves_its_queue_only_inside_the_fetch_script(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    queues = set(tp.topology.names())
    with monitored(redis_url) as seen:
        worker_in_process(tp)
        handles = [add.enqueue(i, i) for i in range(20)]
        wait_for(lambda: all(handle.record().done for handle in handles), 30, "the tasks to finish")
    pops = [c for c in seen if c["command"].split(" ", 1)[0].upper() in POPS]
    keys = tp.storage.keys
    named = [c for c in pops if queues & {keys.queue_of(arg.strip('"')) for arg in c["command"].split(" ")[1:]}]
    from_queues = [c for c in named if any(arg.strip('"').startswith(keys.prefix) for arg in c["command"].split(" "))]
    # 20 messages, each taken by a fetch for the free process or held for the next one: at most 2 per pop
    assert len([c for c in from_queues if c["client_type"] == "lua"]) >= 10
    assert [c for c in from_queues if c["client_type"] != "lua"] == []  # never a bare pop from a queue


def test_an_enqueue_writes_its_record_and_its_message_in_one_script(redis_url: str) -> None:
    add.enqueue(0, 0)  # the script loaded (an earlier test may have flushed the server's script cache)
    with monitored(redis_url) as seen:
        handle = add.enqueue(1, 2)
    # One command from the client names the task: the publish script (atomic: both or neither)...
    sent = [c["command"] for c in seen if c["client_type"] != "lua" and handle.id in c["command"]]
    assert len(sent) == 1 and sent[0].upper().startswith("EVALSHA ")
    # ...and inside it, the record and the message
    inner = [c["command"] for c in seen if c["client_type"] == "lua"]
    assert any(command.startswith(f"LPUSH {Keys().queue('normal')} ") and handle.id in command for command in inner)
    assert any(command.startswith("HSET ") and f"task:{handle.id}" in command for command in inner)


def test_the_fetch_script_puts_the_message_in_flight_as_it_came_and_quarantines_garbage(redis_url: str) -> None:
    client = tp.storage.client
    keys = tp.storage.keys
    message: dict[str, Any] = {
        "body": "e30=",
        "headers": {"id": "m1", "timelimit": [None, None]},
        "properties": {"delivery_tag": "tag-1", "delivery_info": {"exchange": "normal", "routing_key": "normal"}},
    }
    item = json.dumps(message)
    second = {**message, "properties": {**message["properties"], "delivery_tag": "tag-2"}}
    normal = keys.queue("normal")
    client.lpush(normal, item, json.dumps(second), "not a message")  # taken from the right: oldest first
    client.lpush(keys.bell("normal"), 1, 1, 1)
    scripts = Scripts(client)
    script_keys = [keys.unacked("high"), keys.unacked_index("high"), keys.bell("high"), keys.quarantine("high")]
    script_keys += [keys.queue("high"), keys.unacked("normal"), keys.unacked_index("normal"), keys.bell("normal")]
    script_keys += [keys.quarantine("normal"), normal]
    # 2 queues of 1 list each (each named, with no acknowledgement), at most one message, no start (no worker name)
    taken = scripts.run("fetch", script_keys, [1000.0, 2, 1, 1, "high", 0, "normal", 0, ""])
    assert taken == [normal, item, "tag-1", None]
    in_flight = json.loads(client.hget(keys.unacked("normal"), "tag-1"))
    assert in_flight == [message, "normal", "normal"]  # [null, null] kept
    assert client.zscore(keys.unacked_index("normal"), "tag-1") == 1000.0
    assert client.hlen(keys.unacked("high")) == 0  # in flight under the queue it was taken from
    # Up to 5 at once, from the first non-empty list; the acknowledgements it carries go first
    rest = scripts.run("fetch", script_keys, [1001.0, 2, 1, 5, "high", 0, "normal", 1, "tag-1", ""])
    assert rest == [normal, json.dumps(second), "tag-2", None, "not a message", None, None]
    assert client.hkeys(keys.unacked("normal")) == ["tag-2"]
    assert client.zrange(keys.unacked_index("normal"), 0, -1) == ["tag-2"]
    # in its queue's quarantine: the list, then the item as it was
    assert client.hvals(keys.quarantine("normal")) == [f"{normal}\nnot a message"]
    assert client.hlen(keys.quarantine("high")) == 0
    # Every list empty: the bells rung for messages already taken are silenced
    assert client.llen(keys.bell("normal")) == 3
    assert scripts.run("fetch", script_keys, [1002.0, 2, 1, 5, "high", 0, "normal", 0, ""]) == []
    assert client.llen(keys.bell("normal")) == 0
