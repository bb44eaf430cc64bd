"""``taskplane demo`` as users run it: the whole stack, a report from the run, exit 0; Ctrl-C stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from taskplane.redis.embedded import EmbeddedServer


def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TASKPLANE_")}
    return {**env, "TASKPLANE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "160"}


def stack_pids(output: str) -> list[int]:
    line = next(line for line in output.splitlines() if line.startswith("stack up:"))
    return [int(pid) for pid in re.findall(r"(?:interactive|batch|scheduler|api) (\d+)", line)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_runs_the_stack_and_reports_numbers_from_the_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "taskplane", "demo", "--duration", "20"],
        capture_output=True,
        text=True,
        timeout=170,
        env=demo_env(tmp_path),
        cwd=tmp_path,
    )
    output = result.stdout
    assert result.returncode == 0, output[-3000:] + result.stderr[-2000:]
    assert "demo finished: every check passed" in output and "FAIL" not in output
    facts = dict(re.findall(r"(emails received|webhooks verified|webhook 5xx|snapshots): (\d+)", output))
    assert int(facts["emails received"]) > 0 and int(facts["webhooks verified"]) > 0
    assert int(facts["webhook 5xx"]) == 4  # the first try and three retries of the broken endpoint
    assert re.search(r"│ critical +│ +1 │", output)  # pickup latency of the one user-triggered check
    assert re.search(r"send_alert_webhook +│ retries_exhausted +│ 4", output)
    pids = stack_pids(output)
    assert len(pids) == 4 and not any(alive(pid) for pid in pids)
    assert EmbeddedServer(tmp_path / "data" / "demo" / "server").info() is None


def test_ctrl_c_stops_everything_the_demo_started(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "taskplane", "demo", "--duration", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=demo_env(tmp_path),
        cwd=tmp_path,
    )
    lines: list[str] = []
    pids: list[int] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("stack up:"):
                break
        pids = stack_pids("".join(lines))
        assert len(pids) == 4 and all(alive(pid) for pid in pids)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:  # it hung: stop what it started, by pid, so no later test pays for it
            process.kill()
            process.wait()
            for pid in pids:
                if alive(pid):
                    os.killpg(pid, signal.SIGKILL)
            EmbeddedServer(tmp_path / "data" / "demo" / "server").stop()
    assert process.returncode == 130, "".join(lines) + rest
    assert "interrupted: stopping everything" in rest
    assert not any(alive(pid) for pid in pids)
    assert EmbeddedServer(tmp_path / "data" / "demo" / "server").info() is None
