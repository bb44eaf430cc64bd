"""Finding task records: newest first, filtered, paged by cursor, without a full scan.

Finished and waiting records are read from the smallest index their filters allow (by state, by name,
by queue: sorted sets scored by creation time), a page at a time; without a filter, from the state
indexes merged, with the running records. One call takes at most :data:`SCAN_BUDGET` index entries:
when the filters match few of them, it answers the matches found so far with a cursor to read on, so a
search over a million records never blocks the server. Running records are the tasks of the in-flight
deliveries (a few per worker process).
"""

from __future__ import annotations

import json

from taskplane.core.errors import InvalidRequestError
from taskplane.redis.storage import Storage
from taskplane.stores.cursors import decode_cursor, encode_cursor
from taskplane.stores.record_model import INDEXED_STATES, RUNNING_STATES, RecordPage, TaskRecord, normalise_state

#: Most index entries one call reads before answering (with a cursor to go on).
SCAN_BUDGET = 5_000


def find(
    storage: Storage,
    queues: list[str],
    state: str | None = None,
    name: str | None = None,
    queue: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = 50,
    cursor: str | None = None,
    id_prefix: str | None = None,
) -> RecordPage:
    """Records of ``queues`` newest first, filtered by state, name, queue, creation time and id prefix, paged
    by cursor (each queue's indexes are read merged, a page at a time).

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
    where = [queue] if queue is not None else queues
    if state in RUNNING_STATES:
        return _find_running(storage, where, wanted, since_ms, until_ms, limit, after)
    top: float | str = "+inf" if until_ms is None else until_ms
    if after is not None and (top == "+inf" or after[0] < float(top)):
        top = after[0]
    bottom: float | str = "-inf" if since_ms is None else since_ms
    indexes = {index: each for each in where for index in _indexes_for(storage, each, state, name)}
    running: list[tuple[int, str, str]] = []
    if state is None and name is None:
        # No index of a queue holds every record: merge those of its states, and the running records (in none).
        running = [(*at, each) for at, each, _ in _running(storage, where) if _within(at[0], bottom, top)]
    return _scan(storage, indexes, running, top, bottom, after, wanted, limit)


def _within(score: int, bottom: float | str, top: float | str) -> bool:
    return (bottom == "-inf" or score >= float(bottom)) and (top == "+inf" or score <= float(top))


def _scan(
    storage: Storage,
    indexes: dict[str, str],
    extra: list[tuple[int, str, str]],
    top: float | str,
    bottom: float | str,
    after: tuple[int, str] | None,
    wanted: _Filter,
    limit: int,
) -> RecordPage:
    """Read ``indexes`` (index key -> its queue; merged newest first, with the ``extra`` (score, id, queue)
    entries) from ``top`` down a page at a time until ``limit`` records match or the budget ends."""
    keys = storage.keys
    found: list[TaskRecord] = []
    seen: set[str] = set()  # a record that changed state between two reads is in two indexes
    last: tuple[int, str] | None = None
    scanned = 0
    exhausted = False
    merged = _Merged(storage, indexes, extra, top, bottom, max(limit, 100))
    while len(found) < limit and scanned < SCAN_BUDGET:
        rows = merged.next_page()
        if not rows:
            exhausted = True
            break
        scanned += len(rows)
        if after is not None:
            # Equal scores come in descending id order: ids >= the cursor's were on earlier pages.
            rows = [(i, s, q) for i, s, q in rows if not (s == after[0] and i >= after[1])]
        end_of_page = (rows[-1][1], rows[-1][0]) if rows else last
        rows = [
            (i, s, q) for i, s, q in rows if i not in seen and (not wanted.id_prefix or i.startswith(wanted.id_prefix))
        ]
        pipe = storage.client.pipeline(transaction=False)
        for task_id, _, queue in rows:
            pipe.hgetall(keys.record(queue, task_id))
        for (task_id, score, _), data in zip(rows, pipe.execute(), strict=True):
            seen.add(task_id)
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


class _Merged:
    """Sorted sets read newest first as one: each call gives the next (id, score) rows of all of them in
    (score, id) descending order, as far as every set not yet read to its end has been read."""

    def __init__(
        self,
        storage: Storage,
        indexes: dict[str, str],
        extra: list[tuple[int, str, str]],
        top: float | str,
        bottom: float | str,
        page: int,
    ) -> None:
        self._storage, self._top, self._bottom, self._page = storage, top, bottom, page
        self._queue_of = {**indexes, "": ""}
        self._skips = dict.fromkeys(indexes, 0)  # the entries of each set taken so far
        self._extra = sorted(extra, reverse=True)

    def next_page(self) -> list[tuple[str, int, str]]:
        """The next rows, (id, score, queue), newest first."""
        live = list(self._skips)
        pipe = self._storage.client.pipeline(transaction=False)
        for index in live:
            pipe.zrevrangebyscore(
                index, self._top, self._bottom, start=self._skips[index], num=self._page, withscores=True
            )
        rows: list[tuple[int, str, str, str]] = []  # (score, id, the set it came from or "", its queue)
        horizon: tuple[int, str] | None = None  # below it, a set not read to its end may hold more
        for index, reply in zip(live, pipe.execute() if live else [], strict=True):
            got = [(int(score), str(task_id), index, self._queue_of[index]) for task_id, score in reply]
            rows += got
            if len(got) < self._page:
                del self._skips[index]  # read to its end: what it gave is all it has
            elif horizon is None or got[-1][:2] > horizon:
                horizon = got[-1][:2]
        rows += [(score, task_id, "", queue) for score, task_id, queue in self._extra]
        rows.sort(reverse=True)
        if horizon is not None:
            rows = [row for row in rows if row[:2] >= horizon]
        for _, _, index, _ in rows:
            if index in self._skips:
                self._skips[index] += 1
        taken = {task_id for _, task_id, index, _ in rows if not index}
        self._extra = [entry for entry in self._extra if entry[1] not in taken]
        return [(task_id, score, queue) for score, task_id, _, queue in rows]


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
    queues: list[str],
    wanted: _Filter,
    since_ms: int | None,
    until_ms: int | None,
    limit: int,
    after: tuple[int, str] | None,
) -> RecordPage:
    """Records in a running state (see :func:`_running`)."""
    found = [
        (position, record)
        for position, _, record in _running(storage, queues)
        if wanted.matches(record)
        and (since_ms is None or position[0] >= since_ms)
        and (until_ms is None or position[0] <= until_ms)
        and (after is None or position < after)
    ]
    found.sort(key=lambda item: item[0], reverse=True)
    page = found[:limit]
    more = len(found) > limit
    return RecordPage([record for _, record in page], encode_cursor(*page[-1][0]) if more else None)


def _running(storage: Storage, queues: list[str]) -> list[tuple[tuple[int, str], str, TaskRecord]]:
    """The records of the tasks of ``queues``' in-flight deliveries (a few per worker process) that are in a
    running state, each with its position (creation time, id) and its queue."""
    keys = storage.keys
    tasks: set[tuple[str, str]] = set()
    pipe = storage.client.pipeline(transaction=False)
    for queue in queues:
        pipe.hvals(keys.unacked(queue))
    for queue, entries in zip(queues, pipe.execute(), strict=True):
        for entry in entries:
            try:
                tasks.add((queue, str(json.loads(entry)[0]["headers"]["id"])))
            except (ValueError, KeyError, IndexError, TypeError, RecursionError):
                continue  # not a task message
    pipe = storage.client.pipeline(transaction=False)
    ordered = sorted(tasks)
    for queue, task_id in ordered:
        pipe.hgetall(keys.record(queue, task_id))
    running = []
    for (queue, task_id), data in zip(ordered, pipe.execute(), strict=True):
        if data:
            record = TaskRecord.from_hash(task_id, data)
            if record.state in RUNNING_STATES:
                running.append(((int(record.fields.get("created_ms", 0)), task_id), queue, record))
    return running


def _indexes_for(storage: Storage, queue: str, state: str | None, name: str | None) -> list[str]:
    """The smallest indexes of ``queue`` that hold every record of it the filters can match: by state, by
    name, else those of every indexed state (the running records are in none)."""
    keys = storage.keys
    if state is not None:
        return [keys.index_state(queue, state)]
    if name is not None:
        return [keys.index_name(queue, name)]
    return [keys.index_state(queue, each) for each in INDEXED_STATES]
