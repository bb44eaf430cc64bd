"""Resolving publishes that got no reply, by their own claims: found, they went out; else fenced off and
given a new claim for one more send."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from taskplane.redis.batch import publish_command
from taskplane.redis.keys import Keys
from taskplane.redis.publish_ops import FENCE, CollectedPublish, resolve_publishes
from taskplane.redis.scripts import run_script


def call(nonce: str) -> CollectedPublish:
    """A publish.lua call with its own claim and one LPUSH, built as a publisher builds it."""
    keys: list[str] = [Keys().sent("normal", nonce)]
    argv: list[Any] = [1, "k", 2, nonce, 120_000]
    publish_command(keys, argv, "LPUSH", Keys().queue("normal"), f"message-{nonce}")
    return keys, argv, None


def test_a_publish_whose_claim_is_there_went_out_and_the_others_are_fenced_and_renewed(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.set(Keys().sent("normal", "aaaa"), "aaaa")  # this one went out
    again = resolve_publishes(client, [call("aaaa"), call("bbbb")])
    # Then only the other one is to be sent again, under a new claim; its old claim is fenced
    assert len(again) == 1
    keys, argv, _ = again[0]
    assert argv[3] != "bbbb" and keys[0] == Keys().sent("normal", argv[3]) and keys[1:] == [Keys().queue("normal")]
    assert argv[:3] == [2, "k", 2] and argv[4:] == [120_000, "c", 2, "LPUSH", "message-bbbb"]
    assert client.get(Keys().sent("normal", "bbbb")) == FENCE and client.get(Keys().sent("normal", "aaaa")) == "aaaa"
    assert 0 < client.pttl(Keys().sent("normal", "bbbb")) <= 120_000
    # and the fenced send, arriving late, writes nothing (its claim is taken); the renewed one does
    assert run_script(client, "publish", *call("bbbb")[:2]) == [1, FENCE]
    assert client.llen(Keys().queue("normal")) == 0
    assert run_script(client, "publish", keys, argv) == 2
    assert client.lrange(Keys().queue("normal"), 0, -1) == ["message-bbbb"]


def test_a_publish_without_its_own_claim_cannot_be_resolved(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ValueError, match="without its own claim"):
        resolve_publishes(client, [([Keys().queue("normal")], [1, "c", 3, "LPUSH", "m"], None)])
