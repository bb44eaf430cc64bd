"""``tp.dead_letters``: a requeue is atomic; a second requeue of the same letter finds nothing."""

from __future__ import annotations

from taskplane.redis.keys import Keys
from tests.apps.core_app import fails_until_fixed, tp
from tests.workers import wait_for


def test_requeue_is_atomic_a_second_requeue_finds_nothing(redis_url: str) -> None:
    from taskplane.core.errors import NotFoundError

    handle = fails_until_fixed.enqueue("k")  # no worker: stays queued; make a dead letter by hand
    from taskplane.stores.dead_letters import DeadLetter

    tp.dead_letters.add(DeadLetter(id="dl-1", name="t.fails_until_fixed", queue="normal", reason="failed", args=["k"]))
    letter = tp.dead_letters.get("dl-1")
    assert letter is not None
    tp.dead_letters.requeue_one(letter)
    try:
        tp.dead_letters.requeue_one(letter)
    except NotFoundError as exc:
        assert "no longer" in str(exc)
    else:
        raise AssertionError("second requeue of the same letter must fail")
    # exactly one message entered the queue for it (plus the one enqueued above)
    assert tp.storage.client.llen(Keys().queue("normal")) == 2
    assert handle.id != "dl-1"
    wait_for(lambda: tp.dead_letters.get("dl-1") is None, 1)
