"""Celery's task options in ``@tp.task`` and ``@tp.celery.task``: mapped onto taskplane's policies, or refused
in one line that names the replacement."""

from __future__ import annotations

from typing import Any

import pytest

from taskplane import ConfigurationError, RateLimit, Retry, Taskplane


def retry_of(task: Any) -> Retry:
    return task.taskplane_retry  # type: ignore[no-any-return]


def limit_of(task: Any) -> RateLimit:
    return task.taskplane_rate_limit  # type: ignore[no-any-return]


def app() -> Taskplane:
    return Taskplane("options-tests", redis_url="redis://127.0.0.1:1/0")


def test_celery_retry_options_become_one_retry_policy() -> None:
    tp = app()

    @tp.task(
        bind=True, max_retries=4, autoretry_for=(IOError,), dont_autoretry_for=(FileNotFoundError,), retry_backoff=2
    )
    def fetch(self: object, url: str) -> str:
        return url

    policy = retry_of(fetch)
    assert policy == Retry(
        max_retries=4, backoff=(2.0, 4.0, 8.0, 16.0), jitter=True, on=(IOError,), never_on=(FileNotFoundError,)
    )
    assert fetch.max_retries == 4  # what self.retry() obeys


def test_backoff_is_capped_and_without_it_the_delay_is_default_retry_delay() -> None:
    tp = app()

    @tp.celery.task(autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=5, retry_jitter=False)
    def capped() -> None: ...

    @tp.task(autoretry_for=(Exception,), default_retry_delay=7)
    def constant() -> None: ...

    @tp.task(autoretry_for=(Exception,), retry_kwargs={"max_retries": 1, "countdown": 3})
    def kwargs_style() -> None: ...

    assert retry_of(capped).backoff == (1.0, 2.0, 4.0)  # Celery's default of 3 retries, each capped at 5
    assert retry_of(capped).jitter is False
    assert retry_of(constant).backoff == (7.0,)
    assert retry_of(kwargs_style).max_retries == 1 and retry_of(kwargs_style).backoff == (3.0,)


def test_max_retries_alone_retries_only_when_the_task_asks() -> None:
    tp = app()

    @tp.task(bind=True, max_retries=2)
    def explicit(self: object) -> None: ...

    assert retry_of(explicit).on == () and retry_of(explicit).max_retries == 2


def test_passed_options_reach_the_celery_task() -> None:
    tp = app()

    @tp.task(priority=3, ignore_result=True, expires=60, rate_limit=5, acks_late=True, serializer="json")
    def quiet() -> None: ...

    assert (quiet.priority, quiet.ignore_result, quiet.expires) == (3, True, 60)
    assert limit_of(quiet) == RateLimit("5/s")  # Celery: a number is tasks per second


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"serializer": "pickle"}, "serializer='pickle': taskplane tasks are JSON only"),
        ({"acks_late": False}, "acks_late=False is not supported: taskplane always acknowledges"),
        ({"track_started": True}, "task option 'track_started' is not supported by taskplane: remove it: the record"),
        ({"base": object}, "base=<class 'object'>: give a celery.Task subclass"),
        ({"max_retries": 2, "retry": Retry()}, "give either retry=Retry(...) or Celery's retry options"),
        ({"autoretry_for": ("nope",)}, "autoretry_for: 'nope' is not an exception type"),
        ({"max_retries": None}, "max_retries=None (retry forever) is not supported"),
        ({"retry_kwargs": {"exc": 1}}, "retry_kwargs: only max_retries and countdown"),
        ({"max_retires": 2}, "unknown task option 'max_retires'"),
    ],
)
def test_options_that_make_no_sense_here_are_one_line_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        declare: Any = app().task
        declare(**options)(lambda: None)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_tasks_declared_with_the_celery_decorator_are_taskplane_tasks() -> None:
    tp = app()

    @tp.celery.task
    def plain(x: int) -> int:
        return x

    @tp.celery.task(name="custom.name", queue="normal")
    def named(x: int) -> int:
        return x

    assert plain.name in tp.task_names() and "custom.name" in tp.task_names()
    assert retry_of(tp.get_task("custom.name")) is None
    with pytest.raises(Exception, match="missing a required argument"):
        tp.check_arguments(plain.name, [], {})


def test_a_base_class_of_the_team_runs_over_taskplanes_task() -> None:
    from celery import Task

    class Audited(Task):  # type: ignore[type-arg]
        audited = True

    tp = app()

    @tp.celery.task(base=Audited, name="based.audited")
    def audited(x: int) -> int:
        return x

    task: Any = tp.get_task("based.audited")
    order = type(task).__mro__
    assert isinstance(task, Audited) and task.audited
    # the team's class first, taskplane's task class (it runs the middleware chain) under it
    assert order.index(Audited) < [cls.__name__ for cls in order].index("TaskplaneTask")


def test_typing_false_turns_the_argument_check_off_and_pydantic_passes_to_celery() -> None:
    tp = app()

    @tp.task(name="typed.loose", typing=False)
    def loose(x: int) -> int:
        return x

    @tp.task(name="typed.model", pydantic=True)
    def model(x: int) -> int:
        return x

    tp.check_arguments("typed.loose", [1, 2, 3], {"nope": 1})  # what Celery's typing=False allows
    with pytest.raises(Exception, match="too many positional arguments"):
        tp.check_arguments("typed.model", [1, 2], {})
    assert tp.get_task("typed.loose").typing is False
