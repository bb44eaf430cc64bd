"""``/session``: the dashboard signs in with an API key, kept in an HttpOnly, SameSite=Strict cookie."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from taskplane.api.auth import CSRF_COOKIE, SESSION_COOKIE, Tp, cookie_path, require
from taskplane.api.errors import ApiError
from taskplane.api.routes_tasks import ERRORS
from taskplane.api.schemas import ErrorBody
from taskplane.api.schemas_ops import SessionIn, SessionOut
from taskplane.stores.api_keys import ApiKey

router = APIRouter(tags=["session"])


#: Failed sign-ins from one address in a minute before the next is refused (429) until the minute ends.
SIGN_IN_ATTEMPTS = 10


def _set_cookies(request: Request, response: Response, session: str, ttl: int) -> None:
    secure = request.url.scheme == "https"
    path = cookie_path(request)
    response.set_cookie(
        SESSION_COOKIE, session, max_age=ttl, path=path, httponly=True, samesite="strict", secure=secure
    )
    # Read by the page and sent back as X-CSRF-Token: another site can neither read nor send it.
    token = secrets.token_urlsafe(32)
    response.set_cookie(CSRF_COOKIE, token, path=path, httponly=False, samesite="strict", secure=secure)


@router.post("/session", response_model=SessionOut, responses={**ERRORS, 429: {"model": ErrorBody}})
async def sign_in(tp: Tp, body: SessionIn, request: Request, response: Response) -> SessionOut:
    """Sign in with an API key: sets the session cookie (HttpOnly, SameSite=Strict; a session token that
    expires after ``api_session_ttl``, never the key) and a CSRF token cookie; later requests from the page
    need no Authorization header. After 10 failed sign-ins from one address in a minute, the next get 429
    until the minute ends."""
    client = request.client.host if request.client else "unknown"
    failures, wait = await run_in_threadpool(tp.api_keys.sign_in_failures, client)
    if failures >= SIGN_IN_ATTEMPTS:
        message = f"too many failed sign-ins from {client}: try again in {wait} s"
        raise ApiError(429, "too_many_sign_ins", message, None, {"Retry-After": str(wait)})
    key = await run_in_threadpool(tp.api_keys.authenticate, body.key)
    if key is None:
        await run_in_threadpool(tp.api_keys.sign_in_failed, client)
        raise ApiError(401, "unauthorized", "invalid or revoked API key")
    ttl = tp.settings.api_session_ttl
    session = await run_in_threadpool(tp.api_keys.open_session, key, ttl)
    _set_cookies(request, response, session, ttl)
    return SessionOut(name=key.name, scopes=list(key.scopes))


@router.get("/session", response_model=SessionOut, responses=ERRORS)
def who_am_i(key: Annotated[ApiKey, Depends(require(None))]) -> SessionOut:
    """The key this request is signed in with (cookie or bearer): its name and scopes."""
    return SessionOut(name=key.name, scopes=list(key.scopes))


@router.delete("/session", status_code=204)
def sign_out(tp: Tp, request: Request, response: Response) -> None:
    """Sign out: the session ends and its cookies are removed."""
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        tp.api_keys.close_session(session)
    path = cookie_path(request)
    response.delete_cookie(SESSION_COOKIE, path=path, httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path=path, samesite="strict")
