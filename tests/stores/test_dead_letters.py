"""The dead-letter store: the caps (letters and bytes) drop the oldest and count them; a letter is bounded."""

import pytest

from taskplane import (
    NotFoundError,
    Taskplane,
)
from taskplane.stores.dead_letters import DeadFilter, DeadLetter


def test_dead_letter_queue_is_capped_oldest_dropped_and_counted(redis_url: str) -> None:
    tp = Taskplane("t", dead_letter_cap=3)
    for index in range(5):
        tp.dead_letters.add(
            DeadLetter(id=f"d{index}", name="x", queue="normal", reason="failed", last_failure_ms=1000 + index)
        )
    assert [d.id for d in tp.dead_letters.find()] == ["d4", "d3", "d2"]
    assert tp.dead_letters.dropped("normal") == 2
    assert [d.id for d in tp.dead_letters.find(DeadFilter(task="x"), limit=1, offset=1)] == ["d3"]
    assert tp.dead_letters.purge(ids=["d3"]) == 1
    assert [d.id for d in tp.dead_letters.find()] == ["d4", "d2"]


def test_dead_letter_queue_is_capped_in_bytes_and_a_huge_item_keeps_a_bounded_part(redis_url: str) -> None:
    tp = Taskplane("t", dead_letter_max_bytes=3 * 1024 * 1024)
    huge = "x" * (50 * 1024 * 1024)  # a 50 MB item keeps its first MiB, and says how long it was
    tp.dead_letters.add(DeadLetter(id="huge", name="", queue="normal", reason="malformed", raw=huge, last_failure_ms=1))
    letter = tp.dead_letters.get("huge")
    assert letter is not None and len(letter.raw or "") == 1 << 20 and letter.raw_size == len(huge)
    assert 1 << 20 < tp.dead_letters.size("normal") < (1 << 20) + 4096
    with pytest.raises(NotFoundError, match="cannot be requeued"):
        tp.dead_letters.requeue(ids=["huge"])
    # Three more of about a MiB each: the byte cap drops the oldest first, counted; the newest is kept
    for index in range(3):
        raw = str(index) * (1 << 20)
        letter = DeadLetter(id=f"big{index}", name="", queue="normal", reason="malformed", raw=raw)
        letter.last_failure_ms = index + 2
        tp.dead_letters.add(letter)
    assert [d.id for d in tp.dead_letters.find()] == ["big2", "big1"]
    assert tp.dead_letters.dropped("normal") == 2
    assert tp.dead_letters.size("normal") <= 3 * 1024 * 1024
    # Removing and requeueing take their bytes off the count
    assert tp.dead_letters.purge(ids=["big2"]) == 1
    tp.dead_letters.requeue(ids=["big1"])
    assert tp.dead_letters.size("normal") == 0 and tp.queues.lengths(["normal"]) == {"normal": 1}


def test_a_letter_replaced_under_its_id_is_counted_once(redis_url: str) -> None:
    tp = Taskplane("t")
    for _ in range(3):
        tp.dead_letters.add(DeadLetter(id="same", name="x", queue="normal", reason="failed", traceback="t" * 1000))
    one = len(tp.dead_letters.get("same").to_json())  # type: ignore[union-attr]
    assert tp.dead_letters.size("normal") == one
    long_trace = "frame\n" * 100_000
    tp.dead_letters.add(DeadLetter(id="deep", name="x", queue="normal", reason="failed", traceback=long_trace))
    kept = tp.dead_letters.get("deep")
    assert kept is not None and kept.traceback.endswith("frame\n") and len(kept.traceback) < 70 * 1024
