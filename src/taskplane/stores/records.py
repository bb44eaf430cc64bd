"""Durable task records (one hash per task) and their indexes by state, name and queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from taskplane.core.clock import now_ms
from taskplane.core.protocol import TERMINAL_STATES, TaskState
from taskplane.redis.batch import Batch
from taskplane.redis.keys import Keys
from taskplane.redis.storage import Storage
from taskplane.stores import record_search
from taskplane.stores.rate_limits import SlotRequest
from taskplane.stores.record_model import (
    INDEXED_STATES,
    RUNNING_STATES,
    STATES,
    RecordPage,
    TaskRecord,
    normalise_state,
)

__all__ = ["INDEXED_STATES", "RUNNING_STATES", "STATES", "RecordPage", "RecordStore", "TaskRecord", "normalise_state"]

#: What the start script decided, by the code it answers.
START_VERDICTS = ("run", "cancelled", "done", "wait")


def fetched_start(value: object) -> tuple[str, int] | None:
    """What a worker's fetch did to start a task, from the message's ``Header.STARTED`` (``fetch.lua``:
    ``<verdict code>:<deliveries>``, the codes of ``run_start.lua``): the verdict as :meth:`RecordStore.start`
    gives it and the delivery count; None if the fetch did not start it."""
    code, _, count = str(value or "").partition(":")
    if not (code.isdigit() and count.isdigit() and int(code) < len(START_VERDICTS)):
        return None
    return START_VERDICTS[int(code)], int(count)


class RecordStore:
    """Reads and writes task records (see :meth:`write` for how long they are kept)."""

    def __init__(self, storage: Storage, retention_seconds: int, queues: Callable[[], list[str]] = lambda: []) -> None:
        """``queues`` names the queues to look in for a record found by id alone (the app's declared queues)."""
        self._storage = storage
        self._retention = retention_seconds
        self._queues = queues

    def queues(self) -> list[str]:
        """The queues whose records :meth:`get` and :meth:`find` read."""
        return self._queues()

    def state_keys(self, queue: str) -> list[str]:
        """``queue``'s record indexes by state, in the order of ``INDEXED_STATES``."""
        return [self._storage.keys.index_state(queue, state) for state in INDEXED_STATES]

    def write(
        self, task_id: str, name: str, queue: str, state: str | None = None, batch: Batch | None = None, **fields: Any
    ) -> None:
        """Set ``fields`` (and the state, keeping indexes in step) on a task's record, creating it if new.

        A new record and every change of state except to ``started`` restart the record's retention;
        ``started`` and progress writes leave it (the task was written moments before), and so does a
        final state written less than 1 % of the retention after the record was created: a record is
        kept at least 99 % of the retention after its task finished, for one command less per task.
        With ``batch`` the write is only queued there, to go out with the rest of the batch.
        """
        script_keys, script_args = self.write_script(task_id, name, queue, state, **fields)
        if batch is not None:
            batch.script("record_write", script_keys, script_args)
        else:
            self._storage.scripts.run("record_write", keys=script_keys, args=script_args)

    def write_many(
        self,
        batch: Batch,
        name: str,
        queue: str,
        state: str,
        records: list[tuple[str, dict[str, Any]]],
        **fields: Any,
    ) -> None:
        """Queue on ``batch`` the writes of many records of task ``name`` in ``queue`` that differ only in
        their id and the values given per record in ``records`` (id, fields; the same field names in
        each, none None); ``fields`` are the same for all. Written by ``publish.lua`` as one operation,
        as :meth:`write` would write each one."""
        if not records:
            return
        first_id, first_fields = records[0]
        names = list(first_fields)
        keys, template = self.write_script(first_id, name, queue, state, **fields, **first_fields)
        written = template[5::2]  # the field names; each value follows its name
        positions = [5, *(7 + 2 * written.index(field) for field in names)]  # the id's, then each value's
        keys_of = self._storage.keys
        batch.records(
            [key for index, key in enumerate(keys) if index not in (0, 3)],
            template,
            positions,
            [
                (keys_of.record(queue, task_id), keys_of.events(queue, task_id), [task_id, *(values[f] for f in names)])
                for task_id, values in records
            ],
        )

    def start(
        self,
        batch: Batch,
        task_id: str,
        name: str,
        queue: str,
        attempt: str,
        on_reply: Callable[[str, int], None],
        slot: SlotRequest | None = None,
        **fields: Any,
    ) -> None:
        """Queue ``run_start.lua`` on ``batch``: unless the task was cancelled, reserve its rate-limit
        ``slot`` (if given), count this delivery of ``attempt`` (``record_model.delivery_attempt``; kept in
        the record) and write the record as started with ``fields``. Once the batch went out,
        ``on_reply(verdict, value)`` is called; the verdict is ``run`` (value: deliveries of this attempt so
        far), ``cancelled``, ``done`` (the task already succeeded: a duplicate delivery) or ``wait`` (value:
        ms until the slot it reserved). Only ``run`` wrote the record; ``wait`` took the slot."""
        script_keys, script_args = self.write_script(task_id, name, queue, TaskState.STARTED, **fields)
        keys = [self._storage.keys.cancel(queue, task_id), *script_keys]
        args: list[Any] = [attempt, 0, *script_args]
        if slot is not None:
            keys.insert(1, slot.key)
            args[1:2] = [1, repr(slot.interval), slot.burst]

        def replied(reply: Any) -> None:
            on_reply(START_VERDICTS[int(reply[0])], int(reply[1]))

        batch.script("run_start", keys, args, on_reply=replied)

    def unstart(self, tasks: list[tuple[str, str, str]]) -> None:
        """Undo the fetch's start of tasks (id, name, queue) whose messages went back to their queue before
        any process took them up (``unstart.lua``): a record still saying started says queued again, and
        that delivery is not counted (only a delivery whose process died counts toward the poison cap)."""
        if not tasks:
            return
        batch = self._storage.batch()
        for task_id, name, queue in tasks:
            batch.script("unstart", *self.write_script(task_id, name, queue, TaskState.QUEUED))
        batch.execute()

    def write_script(
        self, task_id: str, name: str, queue: str, state: str | None = None, **fields: Any
    ) -> tuple[list[str], list[Any]]:
        """The keys and arguments of ``record_write.lua`` for :meth:`write`."""
        keys = self._storage.keys
        position = self._index_position(state)
        refresh = 0 if state is None or state == TaskState.STARTED else 2 if state in TERMINAL_STATES else 1
        stamp = now_ms()
        values: dict[str, Any] = {"name": name, "queue": queue, "updated_ms": stamp, **fields}
        if state is not None:
            values["state"] = state
        flat: list[Any] = []
        for key, value in values.items():
            if value is None:
                continue
            flat.extend((key, value))
        script_keys = [
            keys.record(queue, task_id),
            keys.index_name(queue, name),
            keys.index_queue(queue),
            keys.events(queue, task_id),
            *self.state_keys(queue),
        ]
        return script_keys, [position, stamp, self._retention, int(refresh), task_id, *flat]

    @staticmethod
    def _index_position(state: str | None) -> int:
        """Where ``record_write.lua`` finds the new state's index: 0 no change, -1 a state without one."""
        if state is None:
            return 0
        return -1 if state in RUNNING_STATES else 5 + INDEXED_STATES.index(state)

    def get(self, task_id: str, queue: str | None = None) -> TaskRecord | None:
        """The record, or None if no such task was ever recorded (or it expired). Read under ``queue``, or
        under every queue of :meth:`queues` in one round trip (a task re-sent to another queue under its id
        has a record in each: the newest is the task's)."""
        keys = self._storage.keys
        where = [queue] if queue is not None else self._queues()
        pipe = self._storage.client.pipeline(transaction=False)
        for each in where:
            pipe.hgetall(keys.record(each, task_id))
        # (the queue it is found under is the record's: its keys are there)
        found = [
            TaskRecord.from_hash(task_id, {**data, "queue": each})
            for each, data in zip(where, pipe.execute(), strict=True)
            if data
        ]
        if not found:
            return None
        return max(found, key=lambda record: int(record.fields.get("updated_ms") or 0))

    def count_by_state(self) -> dict[str, int]:
        """How many records are in each state (one ZCARD per indexed state and queue; the running states are
        counted among the in-flight deliveries)."""
        queues = self._queues()
        pipe = self._storage.client.pipeline(transaction=False)
        for queue in queues:
            for state in INDEXED_STATES:
                pipe.zcard(self._storage.keys.index_state(queue, state))
        replies = iter(pipe.execute())
        counts = dict.fromkeys(INDEXED_STATES, 0)
        for _ in queues:
            for state in INDEXED_STATES:
                counts[state] += int(next(replies))
        for state in RUNNING_STATES:
            counts[state] = len(record_search.find(self._storage, queues, state, limit=1_000_000).records)
        return {state: counts[state] for state in STATES}

    def find(
        self,
        state: str | None = None,
        name: str | None = None,
        queue: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
        id_prefix: str | None = None,
    ) -> RecordPage:
        """Records newest first, filtered, paged by cursor (:func:`taskplane.stores.record_search.find`)."""
        queues = self._queues()
        return record_search.find(
            self._storage, queues, state, name, queue, since_ms, until_ms, limit, cursor, id_prefix
        )

    def trim(self, names: list[str], queues: list[str]) -> int:
        """Drop index entries older than the retention (their records have expired). Returns how many."""
        keys = self._storage.keys
        cutoff = now_ms() - self._retention * 1000
        pipe = self._storage.client.pipeline(transaction=False)
        for queue in queues:
            by_name = [keys.index_name(queue, name) for name in names]
            for index in [*self.state_keys(queue), *by_name, keys.index_queue(queue)]:
                pipe.zremrangebyscore(index, "-inf", cutoff)
        return int(sum(pipe.execute()))

    def forget(self, queue: str, task_id: str) -> None:
        """Delete ``queue``'s record of a task and its index entries (a task moved to another queue under its
        id: its record there goes on)."""
        record = self.get(task_id, queue)
        keys = self._storage.keys
        pipe = self._storage.client.pipeline(transaction=False)
        pipe.delete(keys.record(queue, task_id))
        for index in [*self.state_keys(queue), keys.index_queue(queue)]:
            pipe.zrem(index, task_id)
        if record is not None and record.name:
            pipe.zrem(keys.index_name(queue, record.name), task_id)
        pipe.execute()


def start_arguments(keys: Keys, worker: str, retention: int, payload_limit: int, skipped: list[str]) -> list[Any]:
    """``fetch.lua``'s arguments for starting the tasks it takes, after the acknowledgements (see the script):
    key names around a queue's name (each task's keys are in the slot of its own queue), the retention, the
    payload limit, the indexed states and the names of tasks it must not start."""
    return [
        worker,
        *keys.halves("record", ""),
        *keys.halves("cancel", ""),
        *keys.halves("events", ""),
        *keys.halves("index_name", ""),
        *keys.halves("index_queue"),
        *keys.halves("index_state", ""),
        retention,
        payload_limit,
        len(INDEXED_STATES),
        *INDEXED_STATES,
        *skipped,
    ]
