"""``unique_for``: the existing id while queued, released when the task ends."""

from __future__ import annotations

from taskplane.redis.keys import Keys
from tests.apps.core_app import tp, unique
from tests.workers import InProcessWorker


def test_unique_for_returns_the_existing_id_while_queued(redis_url: str) -> None:
    first = unique.enqueue("report-7")
    again = unique.enqueue("report-7")
    other = unique.enqueue("report-8")
    assert again.id == first.id and again.existing and not first.existing
    assert other.id != first.id
    assert tp.storage.client.llen(Keys().queue("normal")) == 2  # no second message for report-7


def test_unique_lock_is_released_when_the_task_ends(worker_in_process: InProcessWorker, redis_url: str) -> None:
    worker_in_process(tp)
    first = unique.enqueue("x")
    first.wait(timeout=20)
    later = unique.enqueue("x")
    assert later.id != first.id and not later.existing
