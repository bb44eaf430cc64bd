"""``make smoke``: taskplane as a user gets it. Builds the wheel, installs it without extras in a new virtual
environment outside the checkout, and in a new project directory (the README's Install example) runs a worker,
enqueues by name from the CLI and from code, reads the results, runs ``taskplane dev`` and an enqueue through
its HTTP API, stops everything by pid, and checks that no embedded server is left running. Prints each step;
exits non-zero at the first that fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOBS = """from taskplane import Taskplane

tp = Taskplane("myjobs")


@tp.task
def add(a: int, b: int) -> int:
    return a + b
"""


def wait_ready(worker: subprocess.Popen[str], log: Path, timeout: float = 60.0) -> None:
    """Wait until the worker's log says it is ready (Celery's ``<hostname> ready.``)."""
    deadline = time.monotonic() + timeout
    while " ready." not in log.read_text():
        if worker.poll() is not None:
            sys.exit(f"the worker exited with {worker.returncode} before it was ready: {log.read_text()[-1500:]}")
        if time.monotonic() > deadline:
            sys.exit(f"the worker was not ready within {timeout:g} s: {log.read_text()[-1500:]}")
        time.sleep(0.2)


def step(what: str) -> None:
    print(f"== {what}", flush=True)


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stdout}{done.stderr}")
    return done


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    process.send_signal(sig)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        sys.exit(f"pid {process.pid} did not stop within {timeout:.0f} s")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="taskplane-smoke-") as scratch:
        base = Path(scratch)
        step("build the wheel")
        run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(base / "dist"), str(ROOT)],
            ROOT,
            dict(os.environ),
        )
        wheel = next((base / "dist").glob("taskplane-*.whl"))
        step(f"install {wheel.name} without extras in a new virtual environment")
        run([sys.executable, "-m", "venv", str(base / "venv")], base, dict(os.environ))
        bin_dir = base / "venv" / "bin"
        run(
            [str(bin_dir / "pip"), "install", "--quiet", "--disable-pip-version-check", str(wheel)],
            base,
            dict(os.environ),
        )
        project = base / "shop"
        project.mkdir()
        (project / "pyproject.toml").write_text("[project]\nname = 'shop'\nversion = '0'\n")
        (project / "myjobs.py").write_text(JOBS)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TASKPLANE_") and k not in ("REDIS_URL", "PYTHONPATH", "VIRTUAL_ENV")
        }
        env.update(
            PATH=f"{bin_dir}:{env.get('PATH', '')}", XDG_STATE_HOME=str(base / "state"), PYTHONDONTWRITEBYTECODE="1"
        )
        taskplane = str(bin_dir / "taskplane")

        step("taskplane worker -A myjobs:tp -c 1 (starts the project's embedded server)")
        worker_log = open(base / "worker.log", "w")  # noqa: SIM115 - closed below
        worker = subprocess.Popen(
            [taskplane, "worker", "-A", "myjobs:tp", "-c", "1"],
            cwd=project,
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            # The worker starts the server, and so stops it when it exits: wait for it, or the enqueue below
            # may start the server first and leave it running (its owner exits while the worker still uses it)
            wait_ready(worker, base / "worker.log")
            step("taskplane enqueue myjobs.add --args '[2, 3]' --wait --json")
            done = run(
                [taskplane, "enqueue", "myjobs.add", "-A", "myjobs:tp", "--args", "[2, 3]", "--wait", "--json"],
                project,
                env,
            )
            print(done.stdout.strip(), done.stderr.strip(), sep="\n")
            assert json.loads(done.stdout)["result"] == 5, done.stdout
            step("enqueue from code: add.enqueue(4, 5).result()")
            script = "from myjobs import add; print(add.enqueue(4, 5).result(timeout=60))"
            done = run([str(bin_dir / "python"), "-c", script], project, env)
            assert done.stdout.strip() == "9", done.stdout + done.stderr
            print(done.stdout.strip())
        finally:
            code = stop(worker)
            worker_log.close()
        print((base / "worker.log").read_text()[-1500:])
        if code != 0:
            sys.exit(f"the worker exited with {code}")

        step("taskplane dev -A myjobs:tp, an enqueue through its HTTP API, Ctrl-C")
        port = free_port()
        dev = subprocess.Popen(
            [taskplane, "dev", "-A", "myjobs:tp", "--port", str(port), "-c", "1"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        lines: list[str] = []
        try:
            assert dev.stdout is not None
            while not any(line.startswith("try:") for line in lines):
                line = dev.stdout.readline()
                if not line:
                    sys.exit("taskplane dev exited:\n" + "".join(lines))
                lines.append(line)
            print("".join(lines), end="")
            token = re.search(r"tpk_[A-Za-z0-9_-]+", "".join(lines))
            assert token is not None
            headers = {"Authorization": f"Bearer {token.group(0)}", "Content-Type": "application/json"}
            body = json.dumps({"task": "myjobs.add", "args": [20, 22]}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/tasks", body, headers, method="POST")
            task_id = json.loads(urllib.request.urlopen(request, timeout=30).read())["id"]
            deadline = time.monotonic() + 60
            while True:
                shown = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/tasks/{task_id}", headers=headers)
                state = json.loads(urllib.request.urlopen(shown, timeout=30).read())["state"]
                if state == "succeeded" or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            print(f"task {task_id}: {state}")
            assert state == "succeeded", state
        finally:
            code = stop(dev, signal.SIGINT)
            rest = dev.stdout.read() if dev.stdout else ""
            print(rest, end="")
        if code != 0:
            sys.exit(f"taskplane dev exited with {code}")

        step("nothing left running: taskplane redis status")
        status = subprocess.run(
            [taskplane, "redis", "status", "--json"], cwd=project, env=env, capture_output=True, text=True
        )
        shown = json.loads(status.stdout)
        print(json.dumps(shown))
        if status.returncode != 1 or shown["servers"]:
            sys.exit("an embedded server is still running")
    print("smoke: a clean install runs a worker, enqueues by name and from code, and taskplane dev")
    return 0


if __name__ == "__main__":
    sys.exit(main())
