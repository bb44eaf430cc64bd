"""A hard time limit kills the task in a real prefork worker and it is dead-lettered."""

from __future__ import annotations

from tests.apps.core_app import hard_limit, tp
from tests.workers import StartWorker


def test_a_hard_time_limit_sends_the_task_to_the_dead_letters(start_worker: StartWorker, redis_url: str) -> None:
    start_worker()
    record = hard_limit.enqueue().wait(timeout=30)
    assert record.state == "dead" and record.fields["reason"] == "time_limit"
    letter = tp.dead_letters.get(record.id)
    assert letter is not None and letter.exception_type == "TimeLimitExceeded"
