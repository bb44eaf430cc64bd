"""The dead-letter store: the cap drops the oldest and counts them."""

from taskplane import (
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
