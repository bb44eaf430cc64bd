"""The middleware chain: hooks in order, a failing hook is logged and cannot break the others, stop
exceptions stop the task, publish errors fail the publish, options are the union of what each owns."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest
from celery.exceptions import Ignore

from taskplane import ConfigurationError, Taskplane
from taskplane.core.protocol import TaskState
from taskplane.middleware.base import Middleware, Publish, Run, TaskCancelled
from taskplane.middleware.chain import Chain


class Recorder(Middleware):
    """Writes down every hook it sees."""

    options = ("colour",)

    def __init__(self, name: str, seen: list[str]) -> None:
        self.name = name
        self.seen = seen

    def task_options(self, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        return {"colour_attribute": options.get("colour")}

    def before_run(self, run: Run) -> None:
        self.seen.append(f"{self.name}.before")

    def after_run(self, run: Run) -> None:
        self.seen.append(f"{self.name}.after:{run.outcome}")

    def on_failure(self, run: Run, exc: Exception) -> None:
        self.seen.append(f"{self.name}.failure:{exc}")

    def before_publish(self, publish: Publish) -> None:
        self.seen.append(f"{self.name}.publish")


class Broken(Middleware):
    """Every hook raises."""

    def before_run(self, run: Run) -> None:
        raise RuntimeError("broken before")

    def after_run(self, run: Run) -> None:
        raise RuntimeError("broken after")

    def before_publish(self, publish: Publish) -> None:
        raise RuntimeError("broken publish")


class Canceller(Middleware):
    def before_run(self, run: Run) -> None:
        raise TaskCancelled(run.task_id)


def make_run(tp: Taskplane) -> Run:
    return Run(
        task=None,
        task_id="t-1",
        name="x.task",
        queue="normal",
        attempt=0,
        args=(),
        kwargs={},
        headers={},
        worker="w@test",
        new_batch=tp.storage.batch,
    )


def make_publish(tp: Taskplane) -> Publish:
    return Publish("x.task", [], {}, "t-1", "normal", None, {}, True, None, tp.storage.batch())


def test_a_failing_hook_is_logged_and_the_others_still_run(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    tp = Taskplane("chain")
    seen: list[str] = []
    chain = Chain([Recorder("a", seen), Broken(), Recorder("b", seen)])
    with caplog.at_level(logging.ERROR, "taskplane.middleware"):
        assert chain.run(make_run(tp), lambda: 42) == 42
    assert seen == ["a.before", "b.before", "a.after:succeeded", "b.after:succeeded"]
    failures = [record.getMessage() for record in caplog.records]
    assert failures == ["middleware Broken.before_run failed", "middleware Broken.after_run failed"]


def test_a_cancelling_hook_stops_the_task_and_the_after_hooks_see_it_cancelled(redis_url: str) -> None:
    tp = Taskplane("chain")
    seen: list[str] = []
    body_ran: list[bool] = []
    chain = Chain([Recorder("a", seen), Canceller(), Recorder("b", seen)])
    with pytest.raises(Ignore):
        chain.run(make_run(tp), lambda: body_ran.append(True))
    assert body_ran == []
    assert seen == ["a.before", f"a.after:{TaskState.CANCELLED}", f"b.after:{TaskState.CANCELLED}"]


def test_failure_hooks_see_the_error_and_it_is_raised_again(redis_url: str) -> None:
    tp = Taskplane("chain")
    seen: list[str] = []
    chain = Chain([Recorder("a", seen)])

    def body() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        chain.run(make_run(tp), body)
    assert seen == ["a.before", "a.failure:boom"]


def test_a_failing_publish_hook_fails_the_publish(redis_url: str) -> None:
    tp = Taskplane("chain")
    seen: list[str] = []
    chain = Chain([Recorder("a", seen), Broken(), Recorder("b", seen)])
    with pytest.raises(RuntimeError, match="broken publish"):
        chain.publish(make_publish(tp))
    assert seen == ["a.publish"]


def test_task_options_are_the_core_ones_plus_what_each_middleware_owns() -> None:
    chain = Chain([Recorder("a", [])])
    assert chain.option_names == ("name", "queue", "bind", "colour")
    assert chain.task_options("x", {"colour": "red"}) == {"colour_attribute": "red"}
    with pytest.raises(ConfigurationError, match="did you mean 'colour'"):
        chain.task_options("x", {"color": "red"})


def test_the_default_chain_owns_every_documented_task_option() -> None:
    assert set(Taskplane("t").chain.option_names) == {
        "name",
        "queue",
        "bind",
        "retry",
        "rate_limit",
        "time_limit",
        "soft_time_limit",
        "unique_for",
        "unique_key",
    }
