"""HTTP enqueue latency at a fixed request rate, and the highest rate whose p99 stays under 10 ms.

Open loop: request i is due at start + i/rate and its latency is measured from that due time, so a slow
answer also counts against the requests queued behind it (no coordinated omission).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from taskplane.redis.embedded import EmbeddedServer
from taskplane.stack import free_port

ROOT = Path(__file__).resolve().parent.parent
QUIET = ("--no-access-log", "--log-level", "warning")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class HttpConnection:
    """A minimal keep-alive HTTP/1.1 client connection: the load generator must cost far less CPU than the
    server it measures, and on 2 cores a full client library does not."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> int:
        """Send one request; return the status after reading the whole response."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        await self.reader.readexactly(length)
        return status


def enqueue_request(host: str, port: int, token: str, index: int) -> bytes:
    body = json.dumps({"task": "bench.noop", "args": [index]}).encode()
    head = (
        f"POST /api/v1/tasks HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def open_loop(host: str, port: int, token: str, rate: float, count: int) -> tuple[list[float], int, float]:
    """Send ``count`` enqueue requests at ``rate`` per second; returns latencies (ms), errors, elapsed s."""
    idle: list[HttpConnection] = []
    latencies: list[float] = []
    errors = 0

    async def one(index: int, due: float) -> None:
        nonlocal errors
        raw = enqueue_request(host, port, token, index)
        connection = idle.pop() if idle else await HttpConnection.open(host, port)
        try:
            status = await connection.request(raw)
        except (asyncio.IncompleteReadError, ConnectionError):  # the server closed an idle keep-alive connection
            connection = await HttpConnection.open(host, port)
            status = await connection.request(raw)
        latencies.append((time.perf_counter() - due) * 1000)
        if status != 202:
            errors += 1
        idle.append(connection)

    for index in range(100):  # warm up the server and a few connections
        await one(index, time.perf_counter())
    latencies.clear()
    start = time.perf_counter()
    pending = []
    for index in range(count):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(one(index, due)))
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - start
    for connection in idle:
        connection.writer.close()
    return latencies, errors, elapsed


RAMP = (300, 400, 600, 800, 1000, 1200, 1500, 2000, 2500, 3000)


def start_api(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """The HTTP API of the bench app in a process of its own; returns it and its port once it answers."""
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "taskplane", "api", "-A", "benchmarks.bench_app:tp", "--port", str(port), *QUIET],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
            return api, port
        except httpx.HTTPError:
            if time.monotonic() > deadline or api.poll() is not None:
                api.kill()
                raise SystemExit("the API did not start") from None
            time.sleep(0.1)


def run_at(port: int, token: str, rate: float, seconds: float) -> dict[str, float]:
    """Latency figures of an open-loop run at ``rate`` requests per second."""
    latencies, errors, elapsed = asyncio.run(open_loop("127.0.0.1", port, token, rate, int(rate * seconds)))
    return {
        "rate": rate,
        "achieved": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "errors": errors,
    }


def measure(env: dict[str, str], rate: float = 200.0, seconds: float = 10.0) -> dict[str, object]:
    """p50/p99 at ``rate``, then the highest rate of :data:`RAMP` whose p99 stays under 10 ms."""
    api, port = start_api(env)
    try:
        os.environ.update(env)
        from benchmarks.bench_app import tp

        _, token = tp.api_keys.create("bench", ["enqueue"])
        fixed = run_at(port, token, rate, seconds)
        best = fixed["rate"] if fixed["p99_ms"] < 10 and not fixed["errors"] else 0.0
        steps = []
        for step in RAMP:
            figures = run_at(port, token, step, 5.0)
            steps.append(figures)
            if figures["p99_ms"] >= 10 or figures["errors"] or figures["achieved"] < 0.95 * step:
                break
            best = step
        return {"at_200": fixed, "ramp": steps, "max_rate_p99_under_10ms": best}
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to send")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskplane-bench-") as data_dir:
        server = EmbeddedServer(data_dir)
        url = server.start().url
        try:
            print(
                json.dumps(measure({**os.environ, "TASKPLANE_REDIS_URL": url}, options.rate, options.seconds), indent=2)
            )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
