"""API keys over real HTTP: 401 without a valid key, 403 without the scope, nothing leaked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api_server import serve_in_thread

if TYPE_CHECKING:
    from taskplane import Taskplane

API = "/api/v1"


Served = tuple["Taskplane", str]


@pytest.fixture
def served(redis_url: str) -> Iterator[Served]:
    from taskplane.api import create_app
    from tests.apps.core_app import tp

    with serve_in_thread(create_app(tp)) as base_url:
        yield tp, base_url


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every API operation, with a dummy value for path parameters."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            found.append((method.upper(), re.sub(r"\{\w+\}", "x", path)))
    return found


def test_every_endpoint_but_health_needs_a_valid_key(served: Served) -> None:
    from taskplane.api import create_app

    tp, base_url = served
    _, token = tp.api_keys.create("someone", ["admin"])
    operations = routes(create_app(tp))
    assert sorted(operations) == sorted(
        [
            ("POST", f"{API}/tasks"),
            ("POST", f"{API}/tasks/batch"),
            ("GET", f"{API}/tasks"),
            ("GET", f"{API}/tasks/x"),
            ("DELETE", f"{API}/tasks/x"),
            ("GET", f"{API}/tasks/x/result"),
            ("GET", f"{API}/tasks/x/events"),
            ("GET", f"{API}/queues"),
            ("GET", f"{API}/workers"),
            ("GET", f"{API}/health"),
            ("GET", f"{API}/ready"),
            ("GET", f"{API}/dead-letters"),
            ("GET", f"{API}/dead-letters/x"),
            ("GET", f"{API}/dead-letters/count"),
            ("POST", f"{API}/dead-letters/requeue"),
            ("DELETE", f"{API}/dead-letters"),
            ("GET", f"{API}/schedules"),
            ("GET", f"{API}/schedules/x"),
            ("POST", f"{API}/schedules/x/pause"),
            ("POST", f"{API}/schedules/x/resume"),
            ("POST", f"{API}/schedules/x/run"),
            ("GET", f"{API}/schedules/x/fires"),
            ("GET", f"{API}/history"),
            ("GET", f"{API}/session"),
            ("POST", f"{API}/session"),  # signs in: checks the key in its body (tests/api/test_session.py)
            ("DELETE", f"{API}/session"),  # signs out: needs no key
            ("GET", "/metrics"),
        ]
    )
    for method, path in operations:
        if path == f"{API}/session" and method != "GET":
            continue
        bare = httpx.request(method, base_url + path)
        forged = httpx.request(method, base_url + path, headers={"Authorization": f"Bearer {token[:-2]}zz"})
        if path == f"{API}/health":
            assert bare.status_code == 200
            continue
        for response in (bare, forged):
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"]["code"] == "unauthorized"
            assert token.split("_")[1] not in response.text  # the key id is not echoed


def test_the_openapi_description_is_public_and_names_the_bearer_scheme(served: Served) -> None:
    _, base_url = served
    docs = httpx.get(f"{base_url}/docs")
    schema = httpx.get(f"{base_url}/openapi.json").json()
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "cdn" not in docs.text.lower()  # Swagger UI's files come from the package: /docs works offline
    policy = docs.headers["content-security-policy"]  # its one inline script by hash; nothing else inline
    assert "script-src 'self' 'sha256-" in policy and "'unsafe-inline'" not in policy.split(";")[1], policy
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_scopes_read_enqueue_admin(served: Served) -> None:
    tp, base_url = served
    tokens = {scope: tp.api_keys.create(scope, [scope])[1] for scope in ("read", "enqueue", "admin")}

    def call(scope: str, method: str, path: str, **kwargs: Any) -> int:
        headers = {"Authorization": f"Bearer {tokens[scope]}"}
        return httpx.request(method, f"{base_url}{API}{path}", headers=headers, **kwargs).status_code

    enqueue = {"json": {"task": "t.add", "args": [1, 2]}}
    assert call("read", "GET", "/queues") == 200
    assert call("read", "POST", "/tasks", **enqueue) == 403
    assert call("read", "DELETE", "/tasks/x") == 403
    assert call("enqueue", "POST", "/tasks", **enqueue) == 202
    assert call("enqueue", "GET", "/tasks") == 403
    assert call("enqueue", "POST", "/dead-letters/requeue", json={"all": True}) == 403
    assert call("read", "DELETE", "/dead-letters", params={"all": "true"}) == 403
    assert call("admin", "POST", "/tasks", **enqueue) == 202
    assert call("admin", "GET", "/tasks") == 200
    assert call("admin", "DELETE", "/dead-letters", params={"all": "true"}) == 200
    forbidden = httpx.get(f"{base_url}{API}/tasks", headers={"Authorization": f"Bearer {tokens['enqueue']}"})
    assert forbidden.json()["error"] == {
        "code": "forbidden",
        "message": "this API key lacks the 'read' scope",
        "details": None,
    }


def test_a_revoked_key_stops_working_and_keys_are_stored_as_digests_only(served: Served) -> None:
    tp, base_url = served
    key, token = tp.api_keys.create("rotating", ["read"])
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{base_url}{API}/queues", headers=headers).status_code == 200
    stored = tp.storage.client.hget(tp.storage.keys.api_keys(), key.id)
    assert token.rsplit("_", 1)[1] not in stored and key.digest in stored
    tp.api_keys.revoke(key.id)
    assert httpx.get(f"{base_url}{API}/queues", headers=headers).status_code == 401
    assert [k.name for k in tp.api_keys.find()] == []


def test_a_malformed_authorization_header_is_401_not_an_error(served: Served) -> None:
    _, base_url = served
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer tpk_", "Bearer tpk__", "Bearer " + "x" * 5000):
        response = httpx.get(f"{base_url}{API}/queues", headers={"Authorization": value})
        assert response.status_code == 401, value
