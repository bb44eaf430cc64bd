"""``taskplane demo``: the whole system on one machine, running the reference workload for a set time.

It starts a private embedded server, the local sites, webhook receiver and SMTP server, two worker
profiles (critical+high, normal+low), a scheduler and the API; seeds 20 monitors; drives pages to change
for ``duration`` seconds while a live view shows queues, throughput and progress; then prints a report
whose numbers come from the run, and stops everything it started (also on Ctrl-C).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

from rich.console import Console
from rich.live import Live

from taskplane import EmbeddedServer, Settings
from taskplane.stack import ChildProcess, start_api
from taskplane_demo.servers import MailServer, Sites, WebhookReceiver

APP = "taskplane_demo.tasks:tp"
MONITORS = 20
BROKEN_MONITOR = 20  # its webhook endpoint answers 503: retries, then a dead letter
SCAN_EVERY = 10  # the demo scans every 10 s instead of 60 s, so a one-minute run sees several rounds
WEBHOOK_BACKOFF = "[1, 2, 3]"  # instead of 1m/5m/15m, so the dead letter appears within the run
UNFINISHED = ("queued", "scheduled", "started", "progress", "retrying")

_stop = threading.Event()


class Interrupted(Exception):
    """Ctrl-C or SIGTERM asked the demo to stop."""


def _request_stop(signum: int, frame: Any) -> None:
    # Only set a flag: an exception raised at an arbitrary point (say, inside a connection pool's lock)
    # could leave a lock held and hang the clean-up. The demo checks the flag wherever it waits.
    _stop.set()


def pause(seconds: float) -> None:
    """Wait ``seconds``, or raise :class:`Interrupted` as soon as a stop was asked for."""
    if _stop.wait(seconds):
        raise Interrupted()


class Api:
    """A small client of the demo's own HTTP API."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request; returns the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        with urlopen(Request(self.base_url + path, data=data, headers=headers, method=method), timeout=10) as answer:
            return json.load(answer)

    def enqueue(self, task: str, args: list[Any]) -> str:
        """POST /tasks; returns the task id."""
        return str(self.call("POST", "/tasks", {"task": task, "args": args})["id"])


def run_demo(console: Console, duration: float = 60.0, serve: bool = False) -> int:
    """Run the demo; returns 0 when the run showed everything it should (the report says what)."""
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)  # SIGTERM stops the demo like Ctrl-C
    home = Settings().data_dir / "demo"
    home.mkdir(parents=True, exist_ok=True)
    for stale in home.glob("monitoring.sqlite*"):
        stale.unlink()
    server = EmbeddedServer(home / "server")
    stoppers: list[Callable[[], object]] = []
    try:
        info = server.start()
        stoppers.append(server.stop)
        sites, hooks, mail = Sites(MONITORS), WebhookReceiver(secret := os.urandom(16).hex()), MailServer()
        stoppers += [sites.stop, hooks.stop, mail.stop]
        os.environ.update(
            {
                "TASKPLANE_REDIS_URL": info.url,
                "TASKPLANE_DATA_DIR": str(home),
                "TASKPLANE_DEMO_DATABASE_URL": f"sqlite:///{(home / 'monitoring.sqlite').resolve()}",
                "TASKPLANE_DEMO_SMTP_PORT": str(mail.port),
                "TASKPLANE_DEMO_WEBHOOK_SECRET": secret,
                "TASKPLANE_DEMO_WEBHOOK_BACKOFF": WEBHOOK_BACKOFF,
                "TASKPLANE_DEMO_SCAN_EVERY": str(SCAN_EVERY),
                "TASKPLANE_DEMO_ANALYSIS_STEP_SECONDS": "1.0",
                "TASKPLANE_DEMO_ANOMALY_BUCKET_SECONDS": "5",
            }
        )
        from taskplane_demo import stage  # imported once the environment names this run's server and servers

        return stage.run(console, duration, serve, home, sites, hooks, mail, stoppers)
    except (Interrupted, KeyboardInterrupt):
        console.print("interrupted: stopping everything the demo started ...")
        return 130
    finally:
        for stop in reversed(stoppers):
            stop()
        console.print(f"stopped {len(stoppers)} parts the demo started (servers, workers, scheduler, API)")


def start_children(home: Path, port: int, stoppers: list[Callable[[], object]]) -> dict[str, ChildProcess]:
    """Both worker profiles, the scheduler and the API, each stopped by its pid at the end."""
    url = os.environ["TASKPLANE_REDIS_URL"]
    logs = home / "logs"
    children: dict[str, ChildProcess] = {}
    for profile in ("interactive", "batch"):
        args = ["worker", "-A", APP, "--profile", profile, "-n", f"{profile}-{os.getpid()}@demo", "-l", "WARNING"]
        children[profile] = ChildProcess(f"worker {profile}", args, url, logs / f"worker-{profile}.log")
        stoppers.append(children[profile].stop)
    children["scheduler"] = ChildProcess("scheduler", ["scheduler", "-A", APP], url, logs / "scheduler.log")
    stoppers.append(children["scheduler"].stop)
    children["api"] = start_api(APP, url, port, logs / "api.log")
    stoppers.append(children["api"].stop)
    return children


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` every 0.2 s until it is truthy.

    Raises:
        TimeoutError: it was not, within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        pause(0.2)
    raise TimeoutError(f"the demo gave up waiting for {what} after {timeout:.0f}s")


class PageChanger(threading.Thread):
    """Changes a random monitored page every few seconds (competitors editing their sites)."""

    def __init__(self, sites: Sites, every: float, seed: int = 11) -> None:
        super().__init__(name="demo-page-changer", daemon=True)
        self.sites = sites
        self.every = every
        self.rng = random.Random(seed)
        self.stopped = threading.Event()
        self.changes = 0

    def run(self) -> None:
        """Change pages until stopped."""
        while not self.stopped.wait(self.every * self.rng.uniform(0.5, 1.5)):
            self.sites.change(self.rng.randint(1, MONITORS - 1))
            self.changes += 1


def today() -> str:
    """Today's UTC date."""
    return datetime.now(UTC).strftime("%Y-%m-%d")


def live(console: Console, render: Callable[[], Any]) -> Live:
    """A live view refreshed four times a second (printed once at the end when not on a terminal)."""
    return Live(get_renderable=render, console=console, refresh_per_second=4, transient=False)
