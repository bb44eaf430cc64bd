"""A dead letter requeued into another queue goes in two steps, each in one cluster slot (issue 26): the
message with its record in the target queue's slot, then the letter leaves its own. A letter that is gone
is refused before anything is sent, and a second requeue of the same letter finds nothing."""

from __future__ import annotations

import json

import pytest
from redis.crc import key_slot

from taskplane.core.errors import NotFoundError
from taskplane.stores.dead_letters import DeadLetter
from tests.apps.core_app import tp
from tests.redis.test_key_slots import Monitor, slots_of_steps


def letter(letter_id: str, raw: str | None = None) -> DeadLetter:
    """A dead letter of the normal queue, added by hand (no worker runs in these tests)."""
    name = "no.such.task" if raw is not None else "t.add"
    tp.dead_letters.add(DeadLetter(id=letter_id, name=name, queue="normal", reason="failed", args=[1, 2], raw=raw))
    found = tp.dead_letters.get(letter_id)
    assert found is not None
    return found


@pytest.mark.parametrize("kind", ["task", "raw"])
def test_a_requeue_into_another_queue_is_two_single_slot_steps(kind: str, redis_url: str) -> None:
    keys = tp.storage.keys
    raw = json.dumps({"body": "e30=", "headers": {"id": "r-1"}, "properties": {}}) if kind == "raw" else None
    dead = letter("r-1", raw)
    monitor = Monitor(redis_url)
    try:
        assert tp.dead_letters.requeue(ids=[dead.id], to_queue="high") == [dead.id]
        monitor.caught_up(tp.storage.client)
    finally:
        monitor.stop()
    # Then the message is in high, the letter left normal.dead, and nothing went to normal
    assert tp.storage.client.llen(keys.queue("high")) == 1 and tp.storage.client.llen(keys.queue("normal")) == 0
    assert tp.dead_letters.get(dead.id) is None
    if kind == "task":  # its record is queued again, in high
        record = tp.status(dead.id)
        assert record is not None and (record.state, record.queue) == ("queued", "high")
    # And every step touched one slot
    steps = slots_of_steps(monitor.lines)
    assert steps and all(len(step) == 1 for step in steps), steps
    assert {next(iter(step)) for step in steps} == {key_slot(keys.queue(q).encode()) for q in ("high", "normal")}
    # A second requeue of the same letter finds nothing, and sends nothing
    with pytest.raises(NotFoundError, match="no longer"):
        tp.dead_letters.requeue_one(dead, "high")
    assert tp.storage.client.llen(keys.queue("high")) == 1
