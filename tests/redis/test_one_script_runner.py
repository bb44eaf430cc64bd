"""Every Lua script taskplane runs goes through ``redis/scripts.py`` (``script_command``, the one command
that runs a script, and the runners built on it, ``redis/batch.py``'s among them): no other module sends
EVAL or EVALSHA, loads a script or registers one with redis-py."""

from __future__ import annotations

import re
from pathlib import Path

import taskplane

SCRIPT_CALLS = re.compile(r"EVALSHA|[\"']EVAL[\"']|\.eval\(|\.evalsha\(|register_script|script_load|script_source\(")


def test_no_module_but_scripts_py_runs_a_script_by_itself() -> None:
    root = Path(taskplane.__file__).parent
    found = [
        f"{path.relative_to(root)}:{number}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        if path != root / "redis" / "scripts.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SCRIPT_CALLS.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == []
