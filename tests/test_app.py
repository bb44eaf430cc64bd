"""Declaring tasks on an app: options, queues, routing, isolation between apps, no I/O at import."""

from pathlib import Path

import pytest

from taskplane import (
    ConfigurationError,
    Taskplane,
)
from taskplane.redis.keys import Keys


def test_an_unknown_task_option_names_the_valid_ones() -> None:
    tp = Taskplane("t")
    with pytest.raises(ConfigurationError, match=r"'retries'.*did you mean 'retry'.*valid options: name, queue"):
        tp.task(retries=3)(lambda: None)


def test_a_task_in_an_undeclared_queue_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="unknown queue 'bulk'"):
        Taskplane("t").task(queue="bulk")(lambda: None)


def test_undeclared_tasks_route_to_normal(redis_url: str) -> None:
    tp = Taskplane("t")

    @tp.task
    def plain() -> None: ...

    handle = plain.enqueue()
    assert handle.record().queue == "normal" and handle.state == "queued"
    assert tp.storage.client.llen(Keys().queue("normal")) == 1


def test_queues_declared_after_first_use_are_an_error(redis_url: str) -> None:
    tp = Taskplane("t")
    tp.queues.stats()
    tp.celery.conf.broker_url  # noqa: B018 - first read of the configuration
    with pytest.raises(ConfigurationError, match="before the app is used"):
        tp.add_queue("late", "low")


def test_an_apps_tasks_stay_its_own_when_another_app_is_created() -> None:
    first = Taskplane("first-app")

    @first.task(name="only.first")
    def only_first() -> None: ...

    second = Taskplane("second-app")
    second.celery.finalize()
    assert "only.first" in first.celery.tasks
    assert "only.first" not in second.celery.tasks


def test_importing_an_app_with_tasks_and_schedules_touches_no_server(tmp_path: Path, repo_root: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TASKPLANE_REDIS_URL", "REDIS_URL")}
    env["TASKPLANE_DATA_DIR"] = str(tmp_path)
    code = "import tests.apps.ops_app, taskplane_demo.tasks as d; print(len(d.tp.schedules))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4"
    assert list(tmp_path.iterdir()) == []  # no embedded server was started under the data directory
