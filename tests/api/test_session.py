"""The dashboard's session over real HTTP: a key signs in into an HttpOnly, SameSite=Strict cookie; a request
that changes something with that cookie needs the CSRF token; sign-out and revocation end it; the page and
the API also work mounted under a prefix."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from taskplane.api import create_app
from tests.api_server import serve_in_thread
from tests.apps.core_app import tp

API = "/api/v1"


@pytest.fixture
def base_url(redis_url: str) -> Iterator[str]:
    with serve_in_thread(create_app(tp)) as url:
        yield url


@contextlib.contextmanager
def signed_in(base_url: str, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        response = client.post(f"{API}/session", json={"key": token})
        assert response.status_code == 200, response.text
        yield client


def test_sign_in_sets_an_httponly_strict_cookie_and_a_csrf_token(base_url: str) -> None:
    _, token = tp.api_keys.create("ops", ["admin"])
    response = httpx.post(f"{base_url}{API}/session", json={"key": token})
    assert response.json() == {"name": "ops", "scopes": ["admin"]}
    cookies = {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}
    session = cookies["taskplane_session"].lower()
    assert "httponly" in session and "samesite=strict" in session and "path=/" in session
    csrf = cookies["taskplane_csrf"].lower()
    assert "samesite=strict" in csrf and "httponly" not in csrf
    refused = httpx.post(f"{base_url}{API}/session", json={"key": "tp_wrong"})
    assert refused.status_code == 401 and "set-cookie" not in refused.headers
    assert httpx.post(f"{base_url}{API}/session", json={"key": token, "extra": 1}).status_code == 422


def test_a_cookie_request_that_changes_something_needs_the_csrf_token(base_url: str) -> None:
    _, token = tp.api_keys.create("ops", ["admin"])
    with signed_in(base_url, token) as client:
        assert client.get(f"{API}/session").json()["name"] == "ops"
        assert client.get(f"{API}/queues").status_code == 200  # reads need no token
        forged = client.post(f"{API}/schedules/none/pause")
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf"
        wrong = client.post(f"{API}/schedules/none/pause", headers={"X-CSRF-Token": "guess"})
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "csrf"
        good = client.post(f"{API}/schedules/none/pause", headers={"X-CSRF-Token": client.cookies["taskplane_csrf"]})
        assert good.status_code == 404  # past the CSRF check and the key: no such schedule
    # A bearer key is not ambient: no token needed
    bearer = httpx.post(f"{base_url}{API}/schedules/none/pause", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 404


def test_sign_out_and_revocation_end_the_session(base_url: str) -> None:
    key, token = tp.api_keys.create("ops", ["read"])
    with signed_in(base_url, token) as client:
        out = client.delete(f"{API}/session")
        assert out.status_code == 204 and "taskplane_session" not in client.cookies
        assert client.get(f"{API}/queues").status_code == 401
    with signed_in(base_url, token) as client:
        tp.api_keys.revoke(key.id)
        revoked = client.get(f"{API}/queues")
        assert revoked.status_code == 401 and revoked.json()["error"]["message"] == "invalid or revoked API key"
        assert "taskplane_session=;" in revoked.headers["set-cookie"]  # the cookie is removed too
        assert "taskplane_session" not in client.cookies


def test_the_page_docs_and_session_work_under_a_prefix(redis_url: str) -> None:
    outer = FastAPI()
    outer.mount("/ops", create_app(tp))
    _, token = tp.api_keys.create("ops", ["read"])
    with serve_in_thread(outer, prefix="/ops") as base:
        redirect = httpx.get(f"{base}/ops")
        assert redirect.status_code in (307, 308) and redirect.headers["location"].endswith("/ops/")
        page = httpx.get(f"{base}/ops/")
        assert page.status_code == 200 and 'src="dashboard-assets/app.js"' in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert httpx.get(f"{base}/ops/dashboard-assets/app.js").status_code == 200
        docs = httpx.get(f"{base}/ops/docs")
        assert "/ops/static-offline-docs/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text.lower()
        assert httpx.get(f"{base}/ops/static-offline-docs/swagger-ui-bundle.js").status_code == 200
        signed = httpx.post(f"{base}/ops{API}/session", json={"key": token})
        assert "path=/ops" in signed.headers["set-cookie"].lower()


def test_the_cookie_holds_a_session_that_is_not_the_key_and_expires(redis_url: str) -> None:
    from taskplane import Taskplane

    short = Taskplane("sessions", api_session_ttl=2)
    _, token = short.api_keys.create("ops", ["read"])
    with serve_in_thread(create_app(short)) as url, httpx.Client(base_url=url, timeout=10) as client:
        signed = client.post(f"{API}/session", json={"key": token})
        assert signed.status_code == 200
        cookie = client.cookies["taskplane_session"]
        assert token not in cookie and cookie.startswith("tps_")  # the key never sits in the browser
        assert "max-age=2" in signed.headers["set-cookie"].lower()
        assert client.get(f"{API}/queues").status_code == 200
        # The session cannot be used as a key, and the server forgets it when it expires
        assert httpx.get(f"{url}{API}/queues", headers={"Authorization": f"Bearer {cookie}"}).status_code == 401
        stored = [key for key in short.storage.client.scan_iter("taskplane:session:*")]
        assert len(stored) == 1 and 0 < short.storage.client.ttl(stored[0]) <= 2
        client.cookies.set("taskplane_session", cookie)  # a client that keeps it past its Max-Age
        short.storage.client.delete(stored[0])  # as the server's expiry does after 2 s
        assert client.get(f"{API}/queues").status_code == 401


def test_ten_failed_sign_ins_from_one_address_are_throttled_for_the_minute(base_url: str) -> None:
    _, token = tp.api_keys.create("ops", ["admin"])
    with httpx.Client(base_url=base_url, timeout=10) as client:
        answers = [client.post(f"{API}/session", json={"key": f"tpk_guess_{n}"}).status_code for n in range(10)]
        assert answers == [401] * 10
        throttled = client.post(f"{API}/session", json={"key": token})  # even the right key, this minute
        assert throttled.status_code == 429 and throttled.json()["error"]["code"] == "too_many_sign_ins"
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
    # Signing in with a bearer key is not a sign-in: the API itself is not throttled
    assert httpx.get(f"{base_url}{API}/queues", headers={"Authorization": f"Bearer {token}"}).status_code == 200
