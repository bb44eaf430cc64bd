"""A bad task declaration is one line naming the task and the option (policies, which are built before the
task is known, name the option; the CLI adds the file and line that declared it)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from taskplane import ConfigurationError, RateLimit, Retry, Taskplane
from tests.cli_output import error_lines


def make(kind: Any, *args: Any, **kwargs: Any) -> object:
    """``kind(*args, **kwargs)``, for values a type checker would rightly refuse."""
    return kind(*args, **kwargs)


def app() -> Taskplane:
    return Taskplane("declaring", redis_url="redis://127.0.0.1:1/0")


def job(n: int) -> int:
    return n


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"unique_for": "10m"}, "unique_for='10m': give a positive number of seconds"),
        ({"unique_for": 10, "unique_key": 3}, "unique_key=3: give a function"),
        ({"unique_key": lambda n: n}, "unique_key without unique_for"),
        ({"time_limit": "x"}, "time_limit='x': give a positive number of seconds"),
        ({"soft_time_limit": -1}, "soft_time_limit=-1: give a positive number of seconds"),
        ({"time_limit": 5, "soft_time_limit": 10}, "soft_time_limit (10.0) must not exceed time_limit (5.0)"),
        ({"rate_limit": "abc"}, "bad rate limit 'abc'"),
        ({"rate_limit": ["30/m"]}, "rate_limit=['30/m']: give a rate like '30/m'"),
        ({"retry": 3}, "retry=3: give a Retry(...)"),
        ({"retyr": Retry()}, "unknown task option 'retyr' (did you mean 'retry'?)"),
        ({"max_retries": "x"}, "max_retries='x': give a whole number >= 0"),
        ({"default_retry_delay": "soon"}, "default_retry_delay='soon'"),
        ({"queue": "nope"}, "unknown queue 'nope'"),
        ({"name": 5}, "name=5: give a string"),
        ({"serializer": "pickle"}, "serializer='pickle'"),
    ],
)
def test_a_bad_option_is_one_line_naming_the_task_and_the_option(options: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        app().task(**options)(job)
    message = str(caught.value)
    assert message.startswith("task tests.test_declaration_errors.job: ") and says in message, message
    assert "\n" not in message


def test_a_named_task_is_named_by_its_name() -> None:
    with pytest.raises(ConfigurationError, match=r"^task shop\.report: unique_for='1h'"):
        app().task(name="shop.report", unique_for="1h")(job)


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (lambda: make(Retry, max_retry=3), "Retry(max_retry=...): unknown option (did you mean 'max_retries'?)"),
        (lambda: make(Retry, max_retries="3"), "Retry(max_retries='3'): give a whole number >= 0"),
        (lambda: make(Retry, backoff="60"), "Retry(backoff='60'): give one or more delays in seconds"),
        (lambda: Retry(backoff=(60, -1)), "-1 is not a delay in seconds >= 0"),
        (lambda: make(Retry, jitter="yes"), "Retry(jitter='yes')"),
        (lambda: make(Retry, on=("ValueError",)), "'ValueError' is not an exception type"),
        (lambda: make(RateLimit, "30/m", bust=2), "RateLimit(bust=...): unknown option (did you mean 'burst'?)"),
        (lambda: make(RateLimit, 30), "RateLimit(rate=30): give a rate like '30/m'"),
        (lambda: make(RateLimit, "30/m", key="tenant"), "RateLimit(key='tenant'): give a function"),
    ],
)
def test_a_bad_policy_is_one_line_naming_the_option(build: Callable[[], object], says: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build()
    assert says in str(caught.value) and "\n" not in str(caught.value), str(caught.value)


def test_durations_may_be_timedeltas_and_a_backoff_a_list() -> None:
    assert make(Retry, backoff=[timedelta(minutes=1), 300]) == Retry(backoff=(60.0, 300.0))
    task: Any = app().task(unique_for=timedelta(minutes=10), time_limit=timedelta(seconds=30))(job)
    assert task.taskplane_unique_for == 600.0 and task.time_limit == 30.0


@pytest.mark.parametrize(
    ("declaration", "says"),
    [
        ("@tp.task(retry=Retry(max_retry=3))", "Retry(max_retry=...): unknown option (did you mean 'max_retries'?)"),
        ("@tp.task(unique_for='10m')", "task their_jobs.add: unique_for='10m'"),
    ],
)
def test_the_cli_says_where_the_bad_declaration_is(tmp_path: Path, declaration: str, says: str) -> None:
    (tmp_path / "their_jobs.py").write_text(
        "from taskplane import Retry, Taskplane\n"
        "tp = Taskplane('theirs', redis_url='redis://127.0.0.1:1/0')\n"
        "\n"
        f"{declaration}\n"
        "def add(a: int, b: int) -> int:\n"
        "    return a + b\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "taskplane", "queues", "-A", "their_jobs:tp"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert error_lines(done.stderr)[0].startswith("error: their_jobs.py:4: ") and says in done.stderr, done.stderr
    assert len(error_lines(done.stderr)) == 1
