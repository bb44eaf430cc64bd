"""The API under a configured body limit and with Redis down."""

from __future__ import annotations

import time

import httpx

from tests.api_server import serve_in_thread

API = "/api/v1"


def test_a_body_over_the_configured_limit_is_413_with_a_declared_or_streamed_length(redis_url: str) -> None:
    from taskplane import Taskplane
    from taskplane.api import create_app

    tp = Taskplane("limits", api_max_body_bytes=200)
    _, token = tp.api_keys.create("t", ["admin"])
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    body = b'{"task": "x", "args": ["' + b"y" * 300 + b'"]}'
    with serve_in_thread(create_app(tp)) as base_url:
        declared = httpx.post(f"{base_url}{API}/tasks", content=body, headers=headers)
        streamed = httpx.post(f"{base_url}{API}/tasks", content=iter([body[:100], body[100:]]), headers=headers)
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "payload_too_large"


def test_redis_down_is_503_at_once_and_health_stays_up(redis_url: str) -> None:
    from taskplane import Taskplane
    from taskplane.api import create_app

    tp = Taskplane("down", redis_url="redis://127.0.0.1:1/0")
    with serve_in_thread(create_app(tp)) as base_url:
        started = time.monotonic()
        answers = [
            httpx.get(f"{base_url}{API}/queues", headers={"Authorization": "Bearer tpk_abc_def"}),
            httpx.get(f"{base_url}{API}/ready", headers={"Authorization": "Bearer tpk_abc_def"}),
            httpx.post(f"{base_url}{API}/tasks", json={"task": "t"}, headers={"Authorization": "Bearer tpk_a_b"}),
        ]
        elapsed = time.monotonic() - started
        health = httpx.get(f"{base_url}{API}/health")
    for response in answers:
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "redis_unavailable" and "redis://127.0.0.1:1/0 is unreachable" in error["message"]
    assert elapsed < 10  # refused connections answer at once; no request hangs on a retry loop
    assert health.status_code == 200


def test_oversized_headers_are_431_and_a_slow_body_is_408_both_configurable(redis_url: str) -> None:
    import socket

    from taskplane import Taskplane
    from taskplane.api import create_app

    tp = Taskplane("limits", api_max_header_bytes=2048, api_read_timeout=1.0)
    _, token = tp.api_keys.create("t", ["admin"])
    with serve_in_thread(create_app(tp)) as base_url:
        # A header set over the limit: refused before anything else
        big = httpx.get(f"{base_url}{API}/queues", headers={"Authorization": f"Bearer {token}", "X-Big": "y" * 4096})
        assert big.status_code == 431 and big.json()["error"]["code"] == "headers_too_large"
        # A client that announces a body and then sends it too slowly
        host, port = base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as slow:
            slow.sendall(
                f"POST {API}/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{".encode()
            )
            began = time.monotonic()
            answer = slow.recv(65536).decode()
            waited = time.monotonic() - began
        assert answer.startswith("HTTP/1.1 408") and '"request_timeout"' in answer, answer
        assert 0.8 < waited < 5, waited
        # And an ordinary request is unaffected
        ok = httpx.get(f"{base_url}{API}/queues", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
