"""Tasks by id: cancelling a queued task, unknown ids."""

import pytest

from taskplane import (
    Taskplane,
)


def test_cancel_of_a_queued_task_marks_it_and_an_unknown_id_is_not_found(redis_url: str) -> None:
    from taskplane import NotFoundError

    tp = Taskplane("t")

    @tp.task(name="x.c")
    def c() -> None: ...

    handle = c.enqueue()
    assert tp.cancel(handle.id) == "cancelled"
    with pytest.raises(NotFoundError):
        tp.cancel("nope")
