"""Finding task records: newest first, filtered, paged by cursor, without a full scan.

Finished and waiting records are read from the smallest index their filters allow (all, by state, by
name, by queue: sorted sets scored by creation time), a page at a time. One call reads at most
:data:`SCAN_BUDGET` index entries: when the filters match few of them, it answers the matches found so
far with a cursor to read on, so a search over a million records never blocks the server. Running
records are the tasks of the in-flight deliveries (a few per worker process).
"""

from __future__ import annotations

import json

from taskplane.core.errors import InvalidRequestError
from taskplane.redis.storage import Storage
from taskplane.stores.cursors import decode_cursor, encode_cursor
from taskplane.stores.record_model import RUNNING_STATES, RecordPage, TaskRecord, normalise_state

#: Most index entries one call reads before answering (with a cursor to go on).
SCAN_BUDGET = 5_000


def find(
    storage: Storage,
    state: str | None = None,
    name: str | None = None,
    queue: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = 50,
    cursor: str | None = None,
    id_prefix: str | None = None,
) -> RecordPage:
    """Records newest first, filtered by state, name, queue, creation time and id prefix, paged by cursor.

    Pass the page's ``next_cursor`` back to read on; it stays valid while tasks are added. A page may
    hold fewer than ``limit`` records and still have a ``next_cursor``: the scan budget ran out first.

    Raises:
        InvalidRequestError: a cursor this function did not hand out, or an unknown state.
    """
    if state is not None:
        try:
            state = normalise_state(state)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None
    after = decode_cursor(cursor) if cursor else None
    wanted = _Filter(state, name, queue, id_prefix or None)
    if state in RUNNING_STATES:
        return _find_running(storage, wanted, since_ms, until_ms, limit, after)
    index = _index_for(storage, state, name, queue)
    top: float | str = "+inf" if until_ms is None else until_ms
    if after is not None and (top == "+inf" or after[0] < float(top)):
        top = after[0]
    bottom: float | str = "-inf" if since_ms is None else since_ms
    return _scan(storage, index, top, bottom, after, wanted, limit)


def _scan(
    storage: Storage,
    index: str,
    top: float | str,
    bottom: float | str,
    after: tuple[int, str] | None,
    wanted: _Filter,
    limit: int,
) -> RecordPage:
    """Read ``index`` from ``top`` down a page at a time until ``limit`` records match or the budget ends."""
    keys = storage.keys
    found: list[TaskRecord] = []
    last: tuple[int, str] | None = None
    skip = scanned = 0
    page = max(limit, 100)
    exhausted = False
    while len(found) < limit and scanned < SCAN_BUDGET:
        rows = storage.client.zrevrangebyscore(index, top, bottom, start=skip, num=page, withscores=True)
        if not rows:
            exhausted = True
            break
        skip += len(rows)
        scanned += len(rows)
        rows = [(task_id, int(score)) for task_id, score in rows]
        if after is not None:
            # Equal scores come in descending id order: ids >= the cursor's were on earlier pages.
            rows = [(i, s) for i, s in rows if not (s == after[0] and i >= after[1])]
        end_of_page = (rows[-1][1], rows[-1][0]) if rows else last
        if wanted.id_prefix:  # before reading the records: most ids will not match
            rows = [(i, s) for i, s in rows if i.startswith(wanted.id_prefix)]
        pipe = storage.client.pipeline(transaction=False)
        for task_id, _ in rows:
            pipe.hgetall(keys.record(task_id))
        for (task_id, score), data in zip(rows, pipe.execute(), strict=True):
            if not data:
                continue
            record = TaskRecord.from_hash(task_id, data)
            if wanted.matches(record):
                found.append(record)
                if len(found) >= limit:
                    last = (score, task_id)
                    break
        else:
            last = end_of_page
    more = last is not None and not exhausted
    return RecordPage(found, encode_cursor(*last) if more and last else None)


class _Filter:
    """What a record must match besides its place in the index."""

    def __init__(self, state: str | None, name: str | None, queue: str | None, id_prefix: str | None) -> None:
        self.state, self.name, self.queue, self.id_prefix = state, name, queue, id_prefix

    def matches(self, record: TaskRecord) -> bool:
        return not (
            (self.state and record.state != self.state)
            or (self.name and record.name != self.name)
            or (self.queue and record.queue != self.queue)
            or (self.id_prefix and not record.id.startswith(self.id_prefix))
        )


def _find_running(
    storage: Storage,
    wanted: _Filter,
    since_ms: int | None,
    until_ms: int | None,
    limit: int,
    after: tuple[int, str] | None,
) -> RecordPage:
    """Records in a running state: the tasks of the in-flight deliveries (a few per worker process)."""
    keys = storage.keys
    ids: set[str] = set()
    for entry in storage.client.hvals(keys.unacked()):
        try:
            ids.add(str(json.loads(entry)[0]["headers"]["id"]))
        except (ValueError, KeyError, IndexError, TypeError):
            continue  # not a task message
    pipe = storage.client.pipeline(transaction=False)
    ordered = sorted(ids)
    for task_id in ordered:
        pipe.hgetall(keys.record(task_id))
    found = []
    for task_id, data in zip(ordered, pipe.execute(), strict=True):
        if not data:
            continue
        record = TaskRecord.from_hash(task_id, data)
        position = (int(record.fields.get("created_ms", 0)), task_id)
        if (
            not wanted.matches(record)
            or (since_ms is not None and position[0] < since_ms)
            or (until_ms is not None and position[0] > until_ms)
            or (after is not None and position >= after)
        ):
            continue
        found.append((position, record))
    found.sort(key=lambda item: item[0], reverse=True)
    page = found[:limit]
    more = len(found) > limit
    return RecordPage([record for _, record in page], encode_cursor(*page[-1][0]) if more else None)


def _index_for(storage: Storage, state: str | None, name: str | None, queue: str | None) -> str:
    """The smallest index that holds every record the filters can match."""
    keys = storage.keys
    if state is not None:
        return keys.index_state(state)
    if name is not None:
        return keys.index_name(name)
    if queue is not None:
        return keys.index_queue(queue)
    return keys.index_all()
