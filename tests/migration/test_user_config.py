"""A team's own ``task_queues`` / ``task_routes``: kept when they name declared queues, else one line saying
what to write instead (``taskplane worker`` checks before it starts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kombu import Queue

from taskplane import ConfigurationError, Taskplane
from tests.cli_output import error_lines


def app() -> Taskplane:
    return Taskplane("routing-tests", queues={"reports": "low"}, redis_url="redis://127.0.0.1:1/0")


def test_their_queues_and_routes_naming_declared_queues_are_kept() -> None:
    tp = app()
    tp.celery.conf.task_queues = (Queue("normal"), Queue("reports"))
    tp.celery.conf.task_routes = {"proj.tasks.report": {"queue": "reports"}}
    tp.check_celery_config()
    assert {queue.name for queue in tp.celery.conf.task_queues} == set(tp.topology.names())  # with tiers
    assert tp.celery.amqp.router.route({}, "proj.tasks.report")["queue"].name == "reports"


@pytest.mark.parametrize("setting", ["task_queues", "task_routes"])
def test_an_unknown_queue_is_one_line_naming_the_fix(setting: str) -> None:
    tp = app()
    if setting == "task_queues":
        tp.celery.conf.task_queues = (Queue("normal"), Queue("critical-jobs"))
    else:
        tp.celery.conf.task_routes = {"proj.tasks.x": {"queue": "critical-jobs"}}
    with pytest.raises(ConfigurationError) as caught:
        tp.check_celery_config()
    message = str(caught.value)
    assert "\n" not in message and f"{setting} names queue(s) taskplane does not know (critical-jobs)" in message
    assert "Taskplane(queues={'critical-jobs': 'normal'})" in message


def test_the_worker_refuses_in_one_line(repo_root: Path, tmp_path: Path) -> None:
    module = tmp_path / "their_app.py"
    module.write_text(
        "from kombu import Queue\nfrom taskplane import Taskplane\n"
        "tp = Taskplane('theirs')\ntp.celery.conf.task_queues = (Queue('critical-jobs'),)\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "taskplane", "worker", "-A", "their_app:tp"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "PYTHONPATH": str(repo_root / "src")},
    )
    assert done.returncode == 1
    assert len(error_lines(done.stderr)) == 1 and "task_queues names queue(s)" in done.stderr
