"""The lease sweep of taskplane's QoS (per queue): every call of kombu's poller sweeps (kombu's own QoS
looked at one call in ten, and kombu 5.5 and 5.6 call every 10 s: a dead worker's deliveries waited up to
100 s past their lease), only the queues the channel consumes, and a delivery returns to its own queue."""

from __future__ import annotations

import json
from typing import Any

from tests.apps.core_app import tp


def expired(queue: str, tag: str) -> None:
    """A delivery of ``queue`` left in flight by a worker that died long ago (its lease ran out)."""
    keys = tp.storage.keys
    message = {
        "body": "e30=",
        "headers": {"id": tag, "task": "t.add"},
        "properties": {"delivery_tag": tag, "delivery_info": {"exchange": queue, "routing_key": queue}},
    }
    tp.storage.client.hset(keys.unacked(queue), tag, json.dumps([message, queue, queue]))
    tp.storage.client.zadd(keys.unacked_index(queue), {tag: 1.0})


def listed(queue: str) -> list[str]:
    return [json.loads(item)["headers"]["id"] for item in tp.storage.client.lrange(tp.storage.keys.queue(queue), 0, -1)]


def test_every_call_sweeps_the_consumed_queues_into_their_own_lists(redis_url: str) -> None:
    keys = tp.storage.keys
    with tp.celery.connection_for_write() as connection:
        channel: Any = connection.default_channel
        channel.basic_consume("normal", False, lambda message: None, "c-normal")
        channel.basic_consume("high", False, lambda message: None, "c-high")
        expired("normal", "n-1")
        expired("low", "l-1")  # a queue this channel does not consume
        channel.qos.restore_visible(num=10)
        assert listed("normal") == ["n-1"] and tp.storage.client.hlen(keys.unacked("normal")) == 0
        assert tp.storage.client.llen(keys.bell("normal")) == 1  # its queue's bell rang
        assert tp.storage.client.hlen(keys.unacked("low")) == 1  # left to a worker of its queue
        # The next call sweeps again (kombu's QoS would have waited for the tenth)
        expired("high", "h-1")
        channel.qos.restore_visible(num=10)
        assert listed("high") == ["h-1"] and tp.storage.client.zcard(keys.unacked_index("high")) == 0
        restored = json.loads(tp.storage.client.lindex(keys.queue("high"), 0))
        assert restored["headers"]["redelivered"] is True  # as kombu marks a restored message
