"""``taskplane api`` closes connections whose request headers are late (``api_header_timeout``): a client
sending one byte a second, or nothing at all, cannot hold a connection; prompt clients are unaffected."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import httpx

from tests.api_server import running_api

REQUEST = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"


def _connect(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.setblocking(False)
    return sock


def _closed(sock: socket.socket) -> bytes | None:
    """What the server sent before closing, or None while the connection is open."""
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except BlockingIOError:
        return None
    except ConnectionResetError:
        pass
    return received


def test_slow_and_silent_clients_are_closed_with_408_and_a_prompt_client_is_served(
    repo_root: Path, redis_url: str, tmp_path: Path
) -> None:
    env = {"TASKPLANE_API_HEADER_TIMEOUT": "1.5"}
    with running_api(repo_root, redis_url, tmp_path / "api.log", env) as base_url:
        slow = [_connect(base_url) for _ in range(40)]
        silent = [_connect(base_url) for _ in range(10)]
        started = time.monotonic()
        sent = 0
        ended: dict[int, float] = {}
        answers: dict[int, bytes] = {}
        while len(ended) < len(slow) + len(silent) and time.monotonic() - started < 15:
            for index, sock in enumerate(slow + silent):
                if index in ended:
                    continue
                if index < len(slow) and sent < len(REQUEST):
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        sock.send(REQUEST[sent : sent + 1])  # one byte per client per round
                answer = _closed(sock)
                if answer is not None:
                    ended[index] = time.monotonic() - started
                    answers[index] = answer
            sent += 1
            # While they drip, a prompt client (keep-alive, two requests on one connection) is served
            with httpx.Client(base_url=base_url) as client:
                assert client.get("/api/v1/health").status_code == 200
                assert client.get("/api/v1/health").status_code == 200
            time.sleep(0.25)
        for sock in slow + silent:
            sock.close()
    assert sent < len(REQUEST)  # no slow client finished its headers before the deadline
    assert len(ended) == 50, f"{50 - len(ended)} connections still open after 15 s"
    assert max(ended.values()) < 6  # 1.5 s deadline, rounds of about 0.3 s on a busy machine
    for answer in answers.values():
        assert answer.startswith(b"HTTP/1.1 408 ") and b'"request_timeout"' in answer, answer[:200]
