"""Celery's own CLI against a taskplane worker: ``celery -A`` finds the app through the one line migration.md
gives, and ``taskplane celery -A APP -- ARGS`` runs any celery subcommand on a Taskplane app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_output import error_lines
from tests.workers import StartWorker

APP = "tests.apps.celery_style.celery_app:tp"


def run(repo_root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=repo_root, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("what", ["registered", "active", "stats"])
def test_celery_inspect_sees_a_taskplane_worker(repo_root: Path, start_worker: StartWorker, what: str) -> None:
    worker = start_worker(app=APP)
    done = run(repo_root, "celery", "-A", "tests.apps.celery_style.celery_app", "inspect", what, "--timeout", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{worker.hostname}: OK" in done.stdout
    if what == "registered":
        assert "tests.apps.celery_style.tasks.notify" in done.stdout  # a @shared_task, declared on the app
    if what == "stats":
        assert '"pool"' in done.stdout


def test_taskplane_celery_runs_a_celery_subcommand_on_the_app(repo_root: Path, start_worker: StartWorker) -> None:
    worker = start_worker(app=APP)
    done = run(repo_root, "taskplane", "celery", "-A", APP, "--", "inspect", "registered", "--timeout", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{worker.hostname}: OK" in done.stdout and "tests.apps.celery_style.tasks.crunch" in done.stdout


def test_taskplane_celery_without_a_subcommand_is_a_one_line_error(repo_root: Path) -> None:
    done = run(repo_root, "taskplane", "celery", "-A", APP)
    assert done.returncode == 1
    assert len(error_lines(done.stderr)) == 1 and "give a celery subcommand after --" in done.stderr
