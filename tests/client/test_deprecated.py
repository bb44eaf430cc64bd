"""The names ``Taskplane`` had before its namespaces still work for one release, each with a warning."""

from __future__ import annotations

import pytest

from taskplane import DeadFilter, DeadLetter, Taskplane


def letter(letter_id: str) -> DeadLetter:
    return DeadLetter(id=letter_id, name="t.gone", queue="normal", reason="failed", exception_type="ValueError")


def test_old_names_warn_and_do_what_the_namespaces_do(redis_url: str) -> None:
    tp = Taskplane("old")
    with pytest.warns(DeprecationWarning, match=r"tp.queue_stats\(\) is deprecated.*tp.queues.stats\(\)"):
        assert tp.queue_stats() == tp.queues.stats()
    with pytest.warns(DeprecationWarning, match=r"tp.workers\(\) is deprecated"):
        assert tp.workers() == tp.workers.live() == []
    with pytest.warns(DeprecationWarning, match="tp.workers_per_queue"):
        assert tp.workers_per_queue() == tp.workers.per_queue()
    with pytest.warns(DeprecationWarning, match="tp.bury"):
        tp.bury(letter("a"))
    with pytest.warns(DeprecationWarning, match="tp.select_dead"):
        assert [found.id for found in tp.select_dead(ids=["a"])] == ["a"]
    with pytest.warns(DeprecationWarning, match="tp.purge_dead_letters"):
        assert tp.purge_dead_letters(where=DeadFilter(task="t.gone")) == 1
    assert tp.dead_letters.find() == []


def test_bury_still_goes_through_the_one_failure_path(redis_url: str) -> None:
    tp = Taskplane("old")
    with pytest.warns(DeprecationWarning):
        tp.bury(DeadLetter(id="b", name="t.gone", queue="normal", reason="failed", traceback="Traceback ..."))
    buried = tp.dead_letters.get("b")
    assert buried is not None and buried.traceback == "Traceback ..." and buried.reason == "failed"
    assert tp.handle("b").record().state == "dead"
