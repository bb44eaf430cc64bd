"""``/session``: the dashboard signs in with an API key, kept in an HttpOnly, SameSite=Strict cookie."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from taskplane.api.auth import CSRF_COOKIE, SESSION_COOKIE, Tp, cookie_path, require
from taskplane.api.errors import ApiError
from taskplane.api.routes_tasks import ERRORS
from taskplane.api.schemas_ops import SessionIn, SessionOut
from taskplane.stores.api_keys import ApiKey

router = APIRouter(tags=["session"])


def _set_cookies(request: Request, response: Response, key: str) -> None:
    secure = request.url.scheme == "https"
    path = cookie_path(request)
    response.set_cookie(SESSION_COOKIE, key, path=path, httponly=True, samesite="strict", secure=secure)
    # Read by the page and sent back as X-CSRF-Token: another site can neither read nor send it.
    token = secrets.token_urlsafe(32)
    response.set_cookie(CSRF_COOKIE, token, path=path, httponly=False, samesite="strict", secure=secure)


@router.post("/session", response_model=SessionOut, responses=ERRORS)
async def sign_in(tp: Tp, body: SessionIn, request: Request, response: Response) -> SessionOut:
    """Sign in with an API key: sets the session cookie (HttpOnly, SameSite=Strict) and a CSRF token
    cookie; later requests from the page need no Authorization header."""
    key = await run_in_threadpool(tp.api_keys.authenticate, body.key)
    if key is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key")
    _set_cookies(request, response, body.key)
    return SessionOut(name=key.name, scopes=list(key.scopes))


@router.get("/session", response_model=SessionOut, responses=ERRORS)
def who_am_i(key: Annotated[ApiKey, Depends(require(None))]) -> SessionOut:
    """The key this request is signed in with (cookie or bearer): its name and scopes."""
    return SessionOut(name=key.name, scopes=list(key.scopes))


@router.delete("/session", status_code=204)
def sign_out(request: Request, response: Response) -> None:
    """Sign out: the session and CSRF cookies are removed."""
    path = cookie_path(request)
    response.delete_cookie(SESSION_COOKIE, path=path, httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path=path, samesite="strict")
