"""A task's record lives in the hash slot of the queue it was sent to (issue 26): it is found by id alone,
listed once, and follows a dead letter requeued into another queue."""

from __future__ import annotations

from redis.crc import key_slot

from tests.apps.core_app import mark, mark_critical, not_retryable, tp
from tests.workers import InProcessWorker, wait_for


def state(task_id: str) -> str | None:
    record = tp.status(task_id)
    return record.state if record is not None else None


def test_a_record_is_in_its_queues_slot_and_found_by_id_alone(
    redis_url: str, worker_in_process: InProcessWorker
) -> None:
    keys = tp.storage.keys
    worker_in_process(tp)
    normal, critical = mark.enqueue("n"), mark_critical.enqueue("c")
    assert normal.result(timeout=30) == "n" and critical.result(timeout=30) == "c"
    for handle, queue in ((normal, "normal"), (critical, "critical")):
        assert tp.storage.client.exists(keys.record(queue, handle.id)) == 1
        assert key_slot(keys.record(queue, handle.id).encode()) == key_slot(keys.queue(queue).encode())
        found = tp.status(handle.id)  # by id alone: read under every declared queue
        assert found is not None and (found.state, found.queue) == ("succeeded", queue)
    listed = [record.id for record in tp.tasks(limit=100).records]
    assert listed.count(normal.id) == 1 and listed.count(critical.id) == 1
    assert [record.id for record in tp.tasks(queue="critical", limit=100).records] == [critical.id]


def test_a_dead_letter_requeued_into_another_queue_takes_its_record_there(
    redis_url: str, worker_in_process: InProcessWorker
) -> None:
    keys = tp.storage.keys
    worker_in_process(tp)
    dead = not_retryable.enqueue()
    wait_for(lambda: state(dead.id) == "dead", 30, "the task to die")
    # When its letter is requeued into the high queue (where it fails again)
    tp.dead_letters.requeue(ids=[dead.id], to_queue="high")
    wait_for(lambda: tp.dead_letters.get(dead.id, "high") is not None, 30, "its letter in high.dead")
    # Then its record is the one in high (written after the letter: FailurePath.bury's two writes), the one in
    # normal is gone, and it is listed once
    wait_for(lambda: getattr(tp.status(dead.id), "state", None) == "dead", 30, "its record dead again")
    record = tp.status(dead.id)
    assert record is not None and (record.state, record.queue) == ("dead", "high")
    assert tp.storage.client.exists(keys.record("normal", dead.id)) == 0
    assert [r.id for r in tp.tasks(limit=100).records].count(dead.id) == 1
    assert dead.id not in [r.id for r in tp.tasks(queue="normal", limit=100).records]
