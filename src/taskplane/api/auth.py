"""API keys: every endpoint but ``/health`` asks for a key with the scope it needs.

A key comes as ``Authorization: Bearer <key>`` (scripts, services) or in the dashboard's session cookie,
set by ``POST /api/v1/session``. A cookie is sent by the browser on its own, so a state-changing request
that relies on it must also carry the CSRF token (``X-CSRF-Token``, equal to the ``taskplane_csrf``
cookie that only pages of this origin can read); SameSite=Strict already keeps other sites' requests
from carrying the cookie at all.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from taskplane.api.errors import ApiError
from taskplane.app import Taskplane
from taskplane.stores.api_keys import ApiKey

bearer = HTTPBearer(auto_error=False, description="An API key: `taskplane api-key create --name NAME --scope SCOPE`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
#: The session cookie: the API key itself, HttpOnly (page scripts never see it), SameSite=Strict.
SESSION_COOKIE = "taskplane_session"
#: The CSRF cookie: a random token the page reads and sends back as :data:`CSRF_HEADER`.
CSRF_COOKIE = "taskplane_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_taskplane(request: Request) -> Taskplane:
    """The Taskplane app this API serves."""
    tp: Taskplane = request.app.state.taskplane
    return tp


Tp = Annotated[Taskplane, Depends(get_taskplane)]


def cookie_path(request: Request) -> str:
    """Where the session cookies apply: the API's own root (it may be mounted under a prefix)."""
    return str(request.scope.get("root_path") or "") or "/"


def clear_session_header(request: Request) -> str:
    """A ``Set-Cookie`` value that removes the session cookie (a revoked key signs the page out)."""
    return f"{SESSION_COOKIE}=; Max-Age=0; Path={cookie_path(request)}; HttpOnly; SameSite=Strict"


def _check_csrf(request: Request) -> None:
    sent = request.headers.get(CSRF_HEADER, "")
    expected = request.cookies.get(CSRF_COOKIE, "")
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise ApiError(403, "csrf", f"a signed-in request that changes something must send the {CSRF_HEADER} header")


def require(scope: str | None) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that lets a request through only with a valid key holding ``scope`` (or ``admin``);
    ``None`` asks for any valid key."""

    async def check_key(
        request: Request,
        tp: Tp,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
    ) -> ApiKey:
        token = credentials.credentials if credentials is not None else request.cookies.get(SESSION_COOKIE)
        if token is None:
            raise ApiError(
                401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>' or sign in", None, _CHALLENGE
            )
        from_cookie = credentials is None
        if from_cookie and request.method not in SAFE_METHODS:
            _check_csrf(request)
        # Asked of Redis on every request, so a revoked key (or a closed session) fails from the next request on.
        check = tp.api_keys.session_key if from_cookie else tp.api_keys.authenticate
        key = await run_in_threadpool(check, token)
        if key is None:
            headers = {**_CHALLENGE, "Set-Cookie": clear_session_header(request)} if from_cookie else _CHALLENGE
            raise ApiError(401, "unauthorized", "invalid or revoked API key", None, headers)
        if scope is not None and not key.allows(scope):
            raise ApiError(403, "forbidden", f"this API key lacks the {scope!r} scope")
        return key

    return check_key
