"""Enqueue from another process, with another Redis URL than the test session's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PRODUCE = """
import json, sys
from tests.apps.core_app import resilient
ids = [resilient.enqueue(0.05, f"t{i}").id for i in range(int(sys.argv[1]))]
print(json.dumps(ids))
"""


def produce(url: str, count: int, repo_root: Path) -> list[str]:
    """Queue ``count`` short ``t.resilient`` tasks on the server at ``url``; returns their ids."""
    result = subprocess.run(
        [sys.executable, "-c", PRODUCE, str(count)],
        env={**os.environ, "TASKPLANE_REDIS_URL": url},
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    ids: list[str] = json.loads(result.stdout)
    return ids
