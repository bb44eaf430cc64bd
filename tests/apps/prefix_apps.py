"""Two apps on one Redis with different key prefixes and the same queue and task names."""

from __future__ import annotations

import json

from taskplane import Taskplane

RAN = "test:prefix:ran"

one = Taskplane("one", key_prefix="one:")
two = Taskplane("two", key_prefix="two:")


@one.task(name="p.echo")
def echo_one(index: int) -> int:
    one.storage.client.rpush(RAN, json.dumps({"app": "one", "index": index}))
    return index


@two.task(name="p.echo")
def echo_two(index: int) -> int:
    two.storage.client.rpush(RAN, json.dumps({"app": "two", "index": index}))
    return index
