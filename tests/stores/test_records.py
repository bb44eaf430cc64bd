"""Task records: unknown ids, listing newest first, filters, cursor paging."""

import time

import pytest

from taskplane import (
    Taskplane,
)


def test_unknown_ids_are_not_found_not_pending(redis_url: str) -> None:
    tp = Taskplane("t")
    assert tp.status("never-existed") is None


def test_records_list_newest_first_filtered_and_paged(redis_url: str) -> None:
    tp = Taskplane("t", queues={"reports": "low"})

    @tp.task(name="x.a")
    def a(i: int) -> None: ...

    @tp.task(name="x.b", queue="reports")
    def b(i: int) -> None: ...

    ids = []
    for task, i in [(a, i) for i in range(5)] + [(b, i) for i in range(3)]:
        ids.append(task.enqueue(i).id)
        time.sleep(0.002)  # records are ordered by creation time in ms; ties are ordered by id
    first = tp.tasks(limit=3)
    assert [r.id for r in first.records] == ids[::-1][:3]
    second = tp.tasks(limit=3, cursor=first.next_cursor)
    assert [r.id for r in second.records] == ids[::-1][3:6]
    page = tp.tasks(name="x.a", limit=2)
    assert [r.id for r in page.records] == ids[:5][::-1][:2]
    assert [r.id for r in tp.tasks(name="x.a", limit=10, cursor=page.next_cursor).records] == ids[:5][::-1][2:]
    assert {r.name for r in tp.tasks(queue="reports").records} == {"x.b"}
    assert len(tp.tasks(state="queued", limit=100).records) == 8 and tp.tasks(state="failed").records == []


def test_record_paging_cursor_holds_across_equal_timestamps_and_new_tasks(redis_url: str) -> None:
    # Given 30 records created in the same few milliseconds (many equal scores)
    tp = Taskplane("t")

    @tp.task(name="x.paged")
    def a(i: int) -> None: ...

    ids = {a.enqueue(i).id for i in range(30)}
    # When paging 7 at a time while new tasks keep arriving
    seen: list[str] = []
    cursor = None
    while True:
        page = tp.tasks(limit=7, cursor=cursor)
        seen += [r.id for r in page.records]
        a.enqueue(99)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # Then every original task is seen exactly once and nothing newer than the first page appears
    assert len(seen) == len(set(seen)) and set(seen) == ids


def test_records_filter_by_creation_time_and_reject_bad_cursor(redis_url: str) -> None:
    from taskplane import InvalidRequestError

    tp = Taskplane("t")

    @tp.task(name="x.timed")
    def a(i: int) -> None: ...

    old = a.enqueue(1).id
    time.sleep(0.05)
    middle = int(time.time() * 1000)
    time.sleep(0.05)
    new = a.enqueue(2).id
    assert [r.id for r in tp.tasks(since_ms=middle).records] == [new]
    assert [r.id for r in tp.tasks(until_ms=middle).records] == [old]
    with pytest.raises(InvalidRequestError, match="bad cursor"):
        tp.tasks(cursor="garbage")
    with pytest.raises(InvalidRequestError, match="unknown state"):
        tp.tasks(state="sleeping")
