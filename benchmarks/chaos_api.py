"""``make chaos`` faults of the HTTP API: a flood of event streams, clients that drip their headers, and one
event stream held open for minutes (each against ``taskplane api`` on its own private server)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks.chaos_stack import APP, ROOT, Outcome, Stack
from taskplane.stack import free_port


def stream_flood(directory: Path, streams: int) -> Outcome:
    """One ``read`` key opens ``streams`` event streams at once while the API is asked for its queues."""
    stack = Stack(directory)
    token, task_id = _read_key(stack, 600)
    headers = {"Authorization": f"Bearer {token}"}

    async def run(base: str) -> tuple[dict[int, int], list[float]]:
        limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=0)
        async with httpx.AsyncClient(headers=headers, timeout=30, limits=limits) as client:
            statuses: dict[int, int] = {}
            opened: list[Any] = []

            async def open_stream() -> None:
                try:
                    response = await client.send(
                        client.build_request("GET", f"{base}/tasks/{task_id}/events"), stream=True
                    )
                except httpx.HTTPError:
                    statuses[0] = statuses.get(0, 0) + 1
                    return
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                opened.append(response)

            await asyncio.gather(*(open_stream() for _ in range(streams)))
            latencies = []
            for _ in range(20):
                began = time.monotonic()
                (await client.get(f"{base}/queues")).raise_for_status()
                latencies.append((time.monotonic() - began) * 1000)
            for response in opened:
                await response.aclose()
            return statuses, latencies

    with _api(stack) as base:
        statuses, latencies = asyncio.run(run(base))
    answered = statuses.get(200, 0) + statuses.get(429, 0)
    note = (
        f"{statuses.get(200, 0)} open, {statuses.get(429, 0)} refused 429; GET /queues meanwhile: "
        f"median {statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms"
    )
    outcome = stack.outcome(f"{streams} event streams from one read key", streams, 0.0, note)
    outcome.completed, outcome.dead, outcome.lost, outcome.duplicates = answered, 0, streams - answered, 0
    return outcome


@contextlib.contextmanager
def _api(stack: Stack) -> Iterator[str]:
    """``taskplane api`` on the stack's server; yields its base URL (``/api/v1``), stopped by its pid."""
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "taskplane", "api", "-A", APP, "--port", str(port)],
        cwd=ROOT,
        env=stack.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield base
    finally:
        api.terminate()
        api.wait(30)


def _read_key(stack: Stack, seconds: float = 0.0) -> tuple[str, str]:
    """A ``read`` API key's token and the id of a task enqueued (running ``seconds``) for streams to follow."""
    code = "from benchmarks.chaos_app import tp, work\nprint(tp.api_keys.create('chaos', ['read'])[1])\n"
    code += f"print(work.enqueue(0, {seconds}).id)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=stack.env, check=True, capture_output=True)
    token, task_id = done.stdout.decode().split()
    return token, task_id


def slow_headers(directory: Path, clients: int, seconds: float) -> Outcome:
    """``clients`` connections each send one byte of a request a second (and never finish its headers) for
    ``seconds``, while the API is asked for its queues: each must be closed (``api_header_timeout``, 10 s)."""
    stack = Stack(directory)
    token, _ = _read_key(stack)
    request = b"GET /api/v1/queues HTTP/1.1\r\nHost: chaos\r\nX-Slow: " + b"a" * 1000 + b"\r\n\r\n"

    async def drip(host: str, port: int, closed_at: list[float], began: float) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for index in range(int(seconds)):
                writer.write(request[index : index + 1])
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    if not await asyncio.wait_for(reader.read(4096), timeout=1.0) and reader.at_eof():
                        break
                if reader.at_eof():
                    break
            else:
                return  # still open when the run ended
            closed_at.append(time.monotonic() - began)
        except (ConnectionError, OSError):
            closed_at.append(time.monotonic() - began)
        finally:
            writer.close()

    async def run(base: str) -> tuple[list[float], list[float]]:
        host, port = base.removeprefix("http://").split("/")[0].split(":")
        began = time.monotonic()
        closed_at: list[float] = []
        drips = asyncio.gather(*(drip(host, int(port), closed_at, began) for _ in range(clients)))
        latencies: list[float] = []
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            while time.monotonic() - began < seconds:
                asked = time.monotonic()
                (await client.get(f"{base}/queues")).raise_for_status()
                latencies.append((time.monotonic() - asked) * 1000)
                await asyncio.sleep(0.5)
        await drips
        return closed_at, latencies

    with _api(stack) as base:
        closed_at, latencies = asyncio.run(run(base))
    note = (
        f"{len(closed_at)} of {clients} closed, the last after {max(closed_at, default=0):.1f} s; GET /queues "
        f"meanwhile: median {statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms"
    )
    outcome = stack.outcome(f"{clients} clients dripping headers a byte/s", clients, max(closed_at, default=0), note)
    outcome.completed, outcome.dead, outcome.lost, outcome.duplicates = len(closed_at), 0, clients - len(closed_at), 0
    return outcome


def long_stream(directory: Path, seconds: float) -> Outcome:
    """One event stream held open ``seconds`` (no event: its task waits for a worker started only then); it
    must still be open, have had keep-alive comments, and end with the task's ``succeeded``."""
    stack = Stack(directory)
    token, task_id = _read_key(stack)
    pings = 0
    states: list[str] = []
    began = time.monotonic()
    started_worker = False
    error = ""
    with _api(stack) as base:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with httpx.stream("GET", f"{base}/tasks/{task_id}/events", headers=headers, timeout=60) as response:
                for line in response.iter_lines():
                    if line.startswith(":"):
                        pings += 1
                    elif line.startswith("data:"):
                        states.append(json.loads(line[5:]).get("state", ""))
                    if not started_worker and time.monotonic() - began >= seconds:
                        stack.worker(1)  # the task runs now: its end is the stream's next event
                        started_worker = True
                    if states and states[-1] == "succeeded":
                        break
        except httpx.HTTPError as exc:
            error = f"; the stream broke: {type(exc).__name__}"
    held = time.monotonic() - began
    recovery = stack.wait(1, 60)
    ended = bool(states) and states[-1] == "succeeded" and held >= seconds
    note = f"held {held:.0f} s, {pings} keep-alive comments, states {' > '.join(dict.fromkeys(states))}{error}"
    outcome = stack.outcome(f"one event stream held {seconds:g} s", 1, recovery, note)
    outcome.lost = 0 if ended else 1
    return outcome
