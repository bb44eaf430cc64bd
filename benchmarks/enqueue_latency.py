"""``make bench``: enqueue latency through the HTTP API at a fixed request rate, against the embedded server.

Open loop: request i is due at start + i/rate and its latency is measured from that due time, so a slow
answer also counts against the requests queued behind it (no coordinated omission). The same number of
direct library enqueues (``tp.enqueue``) is measured too, so the HTTP cost reads as a ratio.
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


def summary(latencies_ms: list[float]) -> str:
    return (
        f"p50 {percentile(latencies_ms, 0.50):6.2f} ms  p90 {percentile(latencies_ms, 0.90):6.2f} ms  "
        f"p99 {percentile(latencies_ms, 0.99):6.2f} ms  max {max(latencies_ms):6.2f} ms"
    )


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


def library_latencies(count: int) -> list[float]:
    """Direct ``tp.enqueue`` calls, one after another, in this process."""
    from benchmarks.bench_app import tp

    latencies = []
    for index in range(count):
        started = time.perf_counter()
        tp.enqueue("bench.noop", [index])
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to send")
    options = parser.parse_args()
    count = int(options.rate * options.seconds)
    with tempfile.TemporaryDirectory(prefix="taskplane-bench-") as data_dir:
        server = EmbeddedServer(data_dir)
        url = server.start().url
        os.environ["TASKPLANE_REDIS_URL"] = url
        port = free_port()
        api = subprocess.Popen(
            [sys.executable, "-m", "taskplane", "api", "-A", "benchmarks.bench_app:tp", "--port", str(port), *QUIET],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        try:
            from benchmarks.bench_app import tp

            _, token = tp.api_keys.create("bench", ["enqueue"])
            base_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{base_url}/api/v1/health", timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or api.poll() is not None:
                        raise SystemExit("the API did not start") from None
                    time.sleep(0.1)
            latencies, errors, elapsed = asyncio.run(open_loop("127.0.0.1", port, token, options.rate, count))
            direct = library_latencies(count)
        finally:
            api.send_signal(signal.SIGTERM)
            api.wait(15)
            server.stop()
    http_p99 = percentile(latencies, 0.99)
    direct_p99 = percentile(direct, 0.99)
    print(
        f"enqueue through HTTP, {count} requests at {options.rate:g}/s (achieved {count / elapsed:.1f}/s), "
        f"{errors} errors"
    )
    print(f"  HTTP      {summary(latencies)}")
    print(f"  library   {summary(direct)}  (tp.enqueue in-process, back to back)")
    print(
        f"  HTTP p99 / library p99 = {http_p99 / direct_p99:.1f}x; target HTTP p99 < 10 ms: "
        f"{'met' if http_p99 < 10 else 'NOT met'}"
    )
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
