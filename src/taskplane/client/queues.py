"""Operating on tasks and queues: results, cancellation, queue depths, workers per queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kombu.transport.redis import Channel as RedisChannel

from taskplane.core.errors import NotFinishedError, NotFoundError
from taskplane.client.handle import result_of
from taskplane.stores.records import now_ms

if TYPE_CHECKING:
    from taskplane.app import Taskplane


def result(tp: Taskplane, task_id: str) -> Any:
    """A finished task's result, without waiting (see :meth:`taskplane.Taskplane.result` for the errors)."""
    record = tp.records.get(task_id)
    if record is None:
        raise NotFoundError(f"task {task_id} not found")
    if not record.done:
        raise NotFinishedError(f"task {task_id} has no result yet: it is {record.state}")
    return result_of(tp, record)


def cancel(tp: Taskplane, task_id: str, terminate_after: float | None) -> str:
    """Cancel a task; returns its state (see :meth:`taskplane.Taskplane.cancel`)."""
    record = tp.records.get(task_id)
    if record is None:
        raise NotFoundError(f"task {task_id} not found")
    if record.done:
        return record.state
    tp.cancellations.request(task_id, terminate_after)
    if record.state in ("queued", "scheduled", "retrying"):
        tp.records.write(task_id, record.name, record.queue, "cancelled", finished_ms=now_ms())
        return "cancelled"
    tp.records.write(task_id, record.name, record.queue, None, cancel_requested_ms=now_ms())
    return record.state


def priority_lists(queue: str) -> list[str]:
    """The Redis lists kombu keeps for ``queue``: the queue itself and one per message-priority step."""
    steps = [step for step in RedisChannel.priority_steps if step]
    return [queue, *(f"{queue}{RedisChannel.sep}{step}" for step in steps)]


def queue_lengths(tp: Taskplane, names: list[str]) -> dict[str, int]:
    """Messages ready in each queue, counting every priority sub-list (one pipeline)."""
    pipe = tp.storage.client.pipeline(transaction=False)
    lists = {name: priority_lists(name) for name in names}
    for name in names:
        for key in lists[name]:
            pipe.llen(key)
    replies = iter(pipe.execute())
    return {name: sum(int(next(replies)) for _ in lists[name]) for name in names}


def queue_stats(tp: Taskplane) -> list[dict[str, Any]]:
    """Ready, delayed and dead counts per queue, highest tier first."""
    names = tp.topology.names()
    ready = queue_lengths(tp, names)
    delayed = tp.delayed.counts(names)
    dead = tp.dead_letters.counts()
    return [
        {
            "queue": spec.name,
            "tier": spec.tier,
            "weight": spec.weight,
            "ready": ready[spec.name],
            "delayed": delayed.get(spec.name, 0),
            "dead": dead.get(spec.name, 0),
        }
        for spec in tp.topology.ordered()
    ]


def workers_per_queue(tp: Taskplane) -> dict[str, int]:
    """How many live workers consume each declared queue (0 for a queue nobody serves)."""
    counts = dict.fromkeys(tp.topology.names(), 0)
    for worker in tp.workers():
        for queue in worker["queues"]:
            counts[queue] = counts.get(queue, 0) + 1
    return counts
