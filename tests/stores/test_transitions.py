"""The record's state machine, as every writer meets it: each move from each state (and from no record) is
made by the Lua record writer exactly when the table allows it; a refused write changes nothing."""

from __future__ import annotations

import itertools

import pytest

from taskplane.core.protocol import TaskState
from taskplane.core.transitions import TRANSITIONS, allowed
from tests.apps.core_app import tp

STATES = list(TaskState)


def test_the_table_names_every_state() -> None:
    assert set(TRANSITIONS) == set(STATES)
    assert all(targets <= set(STATES) for targets in TRANSITIONS.values())
    assert TRANSITIONS[TaskState.SUCCEEDED] == {TaskState.SUCCEEDED}  # final


def test_every_move_is_made_exactly_when_the_table_allows_it(redis_url: str) -> None:
    records = tp.stores.records
    client = tp.storage.client
    made = []
    for index, (old, new) in enumerate(itertools.product([None, *STATES], STATES)):
        task_id = f"move-{index}"
        if old is not None:
            records.write(task_id, "t.add", "normal", old, marker="before")
        before = client.hgetall(tp.storage.keys.record("normal", task_id))
        records.write(task_id, "t.add", "normal", new, marker="after")
        after = client.hgetall(tp.storage.keys.record("normal", task_id))
        if allowed(old, new):
            assert (after["state"], after["marker"]) == (new, "after"), (old, new)
            made.append((old, new))
        else:  # refused whole: the record and the state indexes are as they were
            assert after == before, (old, new)
            assert client.zscore(tp.storage.keys.index_state("normal", new), task_id) is None or new == old
    assert len(made) == len(STATES) + sum(len(targets) for targets in TRANSITIONS.values())


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (TaskState.SUCCEEDED, TaskState.STARTED),  # a duplicate delivery's start
        (TaskState.SUCCEEDED, TaskState.DEAD),  # a stale worker's failure
        (TaskState.CANCELLED, TaskState.SUCCEEDED),
        (TaskState.QUEUED, TaskState.PROGRESS),  # progress after the task went back to its queue
    ],
)
def test_a_late_write_never_moves_a_record_back(redis_url: str, old: TaskState, new: TaskState) -> None:
    tp.stores.records.write("late-1", "t.add", "normal", old)
    tp.stores.records.write("late-1", "t.add", "normal", new, worker="stale")
    record = tp.status("late-1")
    assert record is not None and record.state == old and "worker" not in record.fields
