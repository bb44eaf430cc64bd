"""``make celery-suite``: Celery's own integration tests of canvas and tasks (``t/integration/test_canvas.py`` and
``test_tasks.py`` from the installed Celery's source distribution) run twice on one Valkey server: on plain
Celery, unchanged, and on a taskplane app with only the changes docs/migration.md lists (:data:`CHANGES`).

Prints a table of the results and every test that passes on plain Celery and not on taskplane; exits non-zero
if such a test is not in :data:`KNOWN` (the differences docs/migration.md names, with their reasons) or a test
in KNOWN passes now (the list must stay true).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
WORK = ROOT / ".matrix" / "celery-suite"
TESTS = ["t/integration/test_canvas.py", "t/integration/test_tasks.py"]

#: The changes to the suite for the taskplane run: (file under t/integration, text, replacement, why).
CHANGES: list[tuple[str, str, str, str]] = [
    (
        "conftest.py",
        "from celery.contrib.pytest import celery_app, celery_session_app, celery_session_worker",
        "from taskplane_suite import celery_app, celery_session_app, celery_session_worker",
        "the app is a Taskplane's (migration step 2): the fixtures give the taskplane app",
    ),
    (
        "conftest.py",
        """        'cassandra_servers': ['localhost'],
        'cassandra_keyspace': 'tests',
        'cassandra_table': 'tests',
        'cassandra_read_consistency': 'ONE',
        'cassandra_write_consistency': 'ONE',
""",
        "",
        "Cassandra settings are refused: results live in taskplane's Redis",
    ),
    (
        "conftest.py",
        "        if configured != {'celery'}:",
        "        if configured - {'celery', 'critical', 'high', 'normal', 'low'}:",
        "a taskplane app has a queue per tier besides the suite's",
    ),
    (
        "tasks.py",
        "@shared_task(soft_time_limit=2, time_limit=1)",
        "@shared_task(soft_time_limit=1, time_limit=1)",
        "taskplane refuses a soft limit above the hard one where the task is declared (the module would not load)",
    ),
]

_SUBSCRIBE = (
    "no SUBSCRIBE at send: Celery subscribes to a task's result channel when it sends the task, taskplane when"
    " someone waits (get() reads the stored result right after subscribing): one command less per enqueue, and"
    " an enqueue never blocks on the result store; the channels are named under the key prefix too"
)
#: Tests that pass on plain Celery and not on taskplane, with the reason docs/migration.md gives.
KNOWN: dict[str, str] = {
    "t.integration.test_tasks.test_tasks::test_soft_time_limit_exceeding_time_limit": (
        "taskplane refuses a soft time limit above the hard one where the task is declared (one line naming the"
        " task); Celery raises when the task is called. The suite's task is declared with equal limits to load"
    ),
    "t.integration.test_tasks.test_tasks::test_request_time_limits_none_when_not_configured": (
        "taskplane gives every task default limits (TASKPLANE_SOFT_TIME_LIMIT 600 s, TASKPLANE_TIME_LIMIT 900 s),"
        " which request.time_limit shows, as plain Celery's does when task_time_limit is set"
    ),
    "t.integration.test_tasks.test_task_redis_result_backend::test_asyncresult_get_cancels_subscription": _SUBSCRIBE,
    "t.integration.test_tasks.test_task_redis_result_backend::test_asyncresult_forget_cancels_subscription": _SUBSCRIBE,
}


def celery_source(version: str) -> Path:
    """The installed Celery's source distribution, unpacked (downloaded from PyPI once)."""
    target = WORK / f"celery-{version}"
    if (target / "t" / "integration").is_dir():
        return target
    WORK.mkdir(parents=True, exist_ok=True)
    download = ["download", "--quiet", "--no-deps", "--no-binary", ":all:", "-d", str(WORK), f"celery=={version}"]
    subprocess.run([sys.executable, "-m", "pip", *download], check=True)
    with tarfile.open(WORK / f"celery-{version}.tar.gz") as archive:
        archive.extractall(WORK, filter="data")
    return target


def prepared(source: Path, flavour: str) -> Path:
    """A copy of the suite (``t/``) for one run, with the taskplane changes applied for ``taskplane``."""
    copy = WORK / flavour
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(source / "t", copy / "t", ignore=shutil.ignore_patterns("unit", "smoke", "benchmarks"))
    (copy / "pytest.ini").write_text(
        "[pytest]\naddopts = --strict-markers -p no:cacheprovider -p no:randomly -p celery.contrib.pytest\n"
        "python_classes = test_*\nmarkers =\n    flaky\n    timeout\n    amqp\n    celery\n"
    )
    if flavour == "taskplane":
        for name, text, replacement, why in CHANGES:
            path = copy / "t" / "integration" / name
            content = path.read_text()
            if text not in content:
                sys.exit(f"change no longer applies to {name} ({why}): {text.strip()[:80]!r}")
            path.write_text(content.replace(text, replacement))
    return copy


def valkey(port: int) -> subprocess.Popen[bytes]:
    """A Valkey server without a password on ``port`` (the suite's own Redis helper connects without one)."""
    from taskplane.redis.embedded import find_server_binary

    server = subprocess.Popen(
        [find_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.05)
    sys.exit("the Valkey server did not start")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(copy: Path, flavour: str, port: int, extra: list[str]) -> dict[str, str]:
    """Run the suite; returns each test's outcome (passed, failed, skipped)."""
    url = f"redis://127.0.0.1:{port}/0"
    subprocess.run([sys.executable, "-c", f"import redis; redis.Redis.from_url({url!r}).flushall()"], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKPLANE_") and k != "REDIS_URL"}
    env.update(TEST_BROKER=url, TEST_BACKEND=url, REDIS_HOST="127.0.0.1", REDIS_PORT=str(port), PYTHONPATH=str(copy))
    if flavour == "taskplane":
        env.update(TASKPLANE_REDIS_URL=url, PYTHONPATH=f"{copy}{os.pathsep}{HERE}")
    report = copy / "report.xml"
    print(f"== {flavour}: {' '.join(TESTS)}", flush=True)
    command = [
        sys.executable,
        "-m",
        "pytest",
        *TESTS,
        "-v",
        "--durations=25",
        "--tb=native",  # pytest's own tracebacks parse source, which Python 3.11 can crash on (INTERNALERROR)
        "--timeout",
        "300",
        f"--junitxml={report}",
        *extra,
    ]
    subprocess.run(command, cwd=copy, env=env)
    outcomes = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcomes[name] = "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", help="only tests matching this pytest expression (a partial run: nothing kept)")
    parser.add_argument("--refresh", action="store_true", help="run plain Celery again (else its last results)")
    options = parser.parse_args()
    extra = ["-k", options.k] if options.k else []
    version = importlib.metadata.version("celery")
    source = celery_source(version)
    kept = WORK / f"plain-{version}.json"
    port = free_port()
    server = valkey(port)
    try:
        if options.refresh or options.k or not kept.exists():
            plain = run(prepared(source, "celery"), "celery", port, extra)
            if not options.k:
                kept.write_text(json.dumps(plain, indent=1, sort_keys=True))
        else:
            plain = json.loads(kept.read_text())
            print(f"== celery: the results of the last full run ({kept}; --refresh runs it again)")
        ours = run(prepared(source, "taskplane"), "taskplane", port, extra)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
    if options.k:
        plain = {name: outcome for name, outcome in plain.items() if name in ours}
    print(f"\nCelery {version}'s integration tests | plain Celery | taskplane")
    print("---|---|---")
    for module in ("test_canvas", "test_tasks"):
        counts = [Counter(o for name, o in outcomes.items() if f".{module}" in name) for outcomes in (plain, ours)]
        print(
            f"{module} | {counts[0]['passed']} passed, {counts[0]['failed']} failed, {counts[0]['skipped']} skipped"
            f" | {counts[1]['passed']} passed, {counts[1]['failed']} failed, {counts[1]['skipped']} skipped"
        )
    lost = sorted(name for name, outcome in plain.items() if outcome == "passed" and ours.get(name) != "passed")
    unexplained = [name for name in lost if name not in KNOWN]
    stale = sorted(name for name in KNOWN if ours.get(name) == "passed")
    for name in lost:
        print(f"passes on plain Celery, not on taskplane: {name}: {KNOWN.get(name, 'NOT EXPLAINED')}")
    for name in stale:
        print(f"listed as a difference but passes now: {name}")
    return 1 if unexplained or stale else 0


if __name__ == "__main__":
    sys.exit(main())
