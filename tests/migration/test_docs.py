"""The commands docs/migration.md gives, run against the Celery-style test project with a real worker."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.workers import StartWorker

PROJECT = "tests.apps.celery_style"


def documented_commands(repo_root: Path) -> list[list[str]]:
    text = (repo_root / "docs" / "migration.md").read_text()
    section = text.split("## 2. Commands", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```console\n(.*?)```", section, re.S)
    assert block is not None, "docs/migration.md lost its command block"
    lines = [line.removeprefix("$ ") for line in block.group(1).splitlines() if line.startswith("$ ")]
    return [shlex.split(line.replace("proj.", f"{PROJECT}.")) for line in lines]


def test_every_documented_command_works(repo_root: Path, start_worker: StartWorker) -> None:
    worker = start_worker(app=f"{PROJECT}.celery_app:tp")
    commands = documented_commands(repo_root)
    assert len(commands) >= 5
    for argv in commands:
        program, *rest = argv
        done = subprocess.run(
            [sys.executable, "-m", program, *rest], cwd=repo_root, capture_output=True, text=True, timeout=90
        )
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
        if program == "celery":
            assert worker.hostname in done.stdout, (argv, done.stdout)


def test_the_celery_suite_differences_are_the_ones_migration_md_names() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / ".ci" / "celery_suite" / "run.py"
    spec = importlib.util.spec_from_file_location("celery_suite_run", path)
    assert spec is not None and spec.loader is not None
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    text = (Path(__file__).resolve().parents[2] / "docs" / "migration.md").read_text()
    for test in harness.KNOWN:
        assert test.rsplit("::", 1)[1] in text, f"docs/migration.md does not name the known difference {test}"
    listed = text.split("### Celery's own integration suite")[1].split("It compares")[0]
    assert len(harness.CHANGES) == listed.count("\n- "), "the guide lists another number of changes to the suite"
