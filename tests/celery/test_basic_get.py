"""kombu's ``basic_get`` on taskplane's channel takes a message losslessly: in flight under its queue's lease in
the same step (kombu's own pops it first), out of flight when acknowledged or taken without acknowledgement."""

from __future__ import annotations

from typing import Any

from tests.apps.core_app import add, tp


def test_basic_get_puts_the_message_in_flight_and_an_ack_takes_it_out(redis_url: str) -> None:
    keys, client = tp.storage.keys, tp.storage.client
    first, second = add.enqueue(1, 2), add.enqueue(3, 4)  # no worker runs
    with tp.celery.connection_for_write() as connection:
        channel: Any = connection.default_channel
        message = channel.basic_get("normal")
        assert message is not None and message.headers["id"] == first.id  # the oldest first
        assert client.hkeys(keys.unacked("normal")) == [message.delivery_tag]
        assert client.zscore(keys.unacked_index("normal"), message.delivery_tag) is not None
        assert client.llen(keys.queue("normal")) == 1
        message.ack()
        assert client.hlen(keys.unacked("normal")) == 0 and client.zcard(keys.unacked_index("normal")) == 0
        # Taken without acknowledgement: out of flight at once (its lease would bring it back)
        taken = channel.basic_get("normal", no_ack=True)
        assert taken is not None and taken.headers["id"] == second.id
        assert client.hlen(keys.unacked("normal")) == 0
        assert channel.basic_get("normal") is None  # nothing left
    record = tp.status(first.id)
    assert record is not None and record.state == "queued"  # basic_get starts nothing
