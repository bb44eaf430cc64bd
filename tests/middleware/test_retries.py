"""Retries: the backoff schedule, the dead-letter envelope, non-retryable errors."""

from __future__ import annotations

import itertools

from tests.apps.core_app import events, fails_until_fixed, not_retryable, tp
from tests.workers import InProcessWorker


def test_retry_schedule_is_honoured_then_a_complete_envelope_then_requeue_round_trip(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    worker_in_process(tp)
    # Given a task that fails until a flag is set, with backoff 0.5 s then 1.0 s
    handle = fails_until_fixed.enqueue("svc:payments")
    record = handle.wait(timeout=30)
    # Then it ran 3 times with the declared gaps, and ended dead
    attempts = [e["at"] for e in events("attempt")]
    assert len(attempts) == 3
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert 0.5 <= gaps[0] < 1.5, gaps
    assert 1.0 <= gaps[1] < 2.0, gaps
    assert record.state == "dead"
    assert record.fields["reason"] == "retries_exhausted"
    # And the dead letter carries the whole envelope
    letter = tp.dead_letters.get(handle.id)
    assert letter is not None
    assert (letter.name, letter.queue, letter.dead_queue) == ("t.fails_until_fixed", "normal", "normal.dead")
    assert letter.args == ["svc:payments"] and letter.kwargs == {}
    assert letter.reason == "retries_exhausted"
    assert letter.exception_type == "RuntimeError" and "svc:payments is broken" in letter.exception_message
    assert "Traceback" in letter.traceback and "fails_until_fixed" in letter.traceback
    assert letter.attempts == 3
    assert letter.first_failure_ms < letter.last_failure_ms
    assert letter.worker.endswith("@test")
    # When the cause is fixed and the letter is requeued
    tp.storage.client.set("svc:payments", "fixed")
    tp.dead_letters.requeue_one(letter)
    # Then it is no longer dead, runs again with attempts reset, and succeeds
    assert tp.dead_letters.get(handle.id) is None
    done = handle.wait(timeout=20)
    assert done.state == "succeeded" and done.result() == "repaired"
    assert done.fields["attempts"] == 1
    assert [q["dead"] for q in tp.queues.stats() if q["queue"] == "normal"] == [0]


def test_a_never_on_exception_goes_straight_to_the_dead_letters(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    worker_in_process(tp)
    record = not_retryable.enqueue().wait(timeout=20)
    assert record.state == "dead" and record.fields["reason"] == "not_retryable"
    assert len(events("attempt")) == 1
