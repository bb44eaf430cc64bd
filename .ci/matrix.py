"""``make test-matrix``: the core, celery and compatibility tests on the lowest declared versions of every runtime
dependency and Python, and on the newest versions with the newest Python on this machine; and the cluster
tests on the lowest versions that can run a cluster (flavour ``cluster``).

Each flavour gets its own virtual environment under ``.matrix/`` (rebuilt when pyproject.toml changes): the
lowest one installs with every runtime dependency pinned to the floor pyproject.toml declares, so a floor that
is not true fails here, at install or in a test. Prints the versions each flavour ran and exits non-zero if
any flavour failed.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = [
    "tests/core",
    "tests/celery",
    "tests/test_compat.py",
    "tests/test_layers.py",
    "tests/test_public_api.py",
    # what depends on redis-py's replies and errors: HELLO (RESP2 before redis-py 8), a reply timeout
    "tests/e2e/test_lost_reply.py",
    "tests/e2e/test_unsuitable_servers.py",
    "tests/redis/test_publish_resolution.py",
    "tests/stores/test_transitions.py",
    # a cluster URL refused in one line below redis-py 6.1 (the cluster tests run in the cluster flavour)
    "tests/redis/test_cluster_client.py",
]
#: The lowest versions that run a Valkey/Redis Cluster, over the floors: redis-py 6.1 (its cluster client's
#: transactions); kombu's ``[redis]`` extra allows redis-py 6 from kombu 5.6 on, which needs Celery 5.6.
CLUSTER_FLOORS = {"redis": "6.1.0", "kombu": "5.6.0", "celery": "5.6.0"}
CLUSTER_TESTS = ["tests/e2e/test_cluster_worker.py", "tests/redis/test_cluster_client.py", "tests/test_compat.py"]
SHOWN = ["celery", "kombu", "redis", "billiard", "hiredis", "pydantic", "fastapi", "typer", "click"]


def floors(pyproject: dict[str, object]) -> list[str]:
    """``name==floor`` for each runtime dependency with a ``>=`` floor (extras and markers dropped)."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    pins = []
    for requirement in project["dependencies"]:
        spec = requirement.split(";")[0]
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$", spec)
        assert match, requirement
        name, constraint = match.group(1), match.group(3)
        floor = re.search(r">=\s*([0-9][0-9A-Za-z.]*)", constraint)
        if floor:
            pins.append(f"{name}=={floor.group(1)}")
    return pins


def interpreter(flavour: str, pyproject: dict[str, object]) -> str:
    """The lowest Python the project declares, or the newest one installed (pyenv's or on PATH)."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    lowest = re.search(r">=\s*3\.(\d+)", str(project["requires-python"]))
    assert lowest, project["requires-python"]
    minors = range(int(lowest.group(1)), 20)
    found: dict[int, str] = {}
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    for minor in minors:
        for candidate in sorted(glob.glob(f"{pyenv_root}/versions/3.{minor}.*/bin/python3.{minor}")):
            found[minor] = candidate
        on_path = shutil.which(f"python3.{minor}")
        if minor not in found and on_path and subprocess.run([on_path, "-V"], capture_output=True).returncode == 0:
            found[minor] = on_path
    if not found:
        sys.exit(f"no Python 3.{lowest.group(1)} or later found (pyenv or PATH)")
    chosen = max(found) if flavour == "newest" else min(found)
    if flavour != "newest" and chosen != int(lowest.group(1)):
        sys.exit(f"the lowest declared Python, 3.{lowest.group(1)}, is not installed")
    return found[chosen]


def prepare(flavour: str, pyproject_text: str) -> Path:
    """The flavour's virtual environment, (re)built when pyproject.toml changed since it was built."""
    pyproject = tomllib.loads(pyproject_text)
    python = interpreter(flavour, pyproject)
    venv = ROOT / ".matrix" / flavour
    stamp = venv / ".built"
    digest = hashlib.sha256((pyproject_text + python).encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    arguments = ["-e", f"{ROOT}[test]"]
    if flavour in ("lowest", "cluster"):
        pins = floors(pyproject)
        if flavour == "cluster":
            pins = [pin for pin in pins if pin.split("==")[0] not in CLUSTER_FLOORS]
            pins += [f"{name}=={version}" for name, version in CLUSTER_FLOORS.items()]
        constraints = venv / "floors.txt"
        constraints.write_text("\n".join(pins) + "\n")
        arguments += ["--constraint", str(constraints)]
    print(f"== {flavour}: installing on {python}", flush=True)
    done = subprocess.run(pip + arguments)
    if done.returncode:
        sys.exit(f"{flavour}: the install failed (a declared floor that cannot be installed together?)")
    stamp.write_text(digest)
    return venv


def versions(venv: Path) -> str:
    """The Python and library versions a flavour runs, on one line."""
    script = (
        "import sys, importlib.metadata as m; "
        f"print('Python ' + sys.version.split()[0] + ', ' + ', '.join(n + ' ' + m.version(n) for n in {SHOWN!r}))"
    )
    out = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("flavours", nargs="*", metavar="lowest|newest|cluster", help="default: all three")
    parser.add_argument("--seed", type=int, help="pytest-randomly's seed (default: a new one, printed)")
    options = parser.parse_args()
    if set(options.flavours) - {"lowest", "newest", "cluster"}:
        parser.error("flavours are lowest, newest and cluster")
    options.flavours = options.flavours or ["lowest", "newest", "cluster"]
    pyproject_text = (ROOT / "pyproject.toml").read_text()
    results = []
    for flavour in options.flavours:
        venv = prepare(flavour, pyproject_text)
        shown = versions(venv)
        print(f"== {flavour}: {shown}", flush=True)
        # A shuffled order, as make test runs (pytest-randomly), with the seed said for a rerun
        seed = options.seed if options.seed is not None else random.randrange(10**6)
        print(f"== {flavour}: --randomly-seed={seed}", flush=True)
        tests = CLUSTER_TESTS if flavour == "cluster" else TESTS
        command = [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", *tests]
        code = subprocess.run([*command, f"--randomly-seed={seed}"], cwd=ROOT).returncode
        results.append((flavour, shown, code))
    print()
    for flavour, shown, code in results:
        print(f"{flavour:7} {'passed' if code == 0 else 'FAILED'}  {shown}")
    return 1 if any(code for _, _, code in results) else 0


if __name__ == "__main__":
    sys.exit(main())
