"""Bearer API keys: every endpoint but ``/health`` asks for a key with the scope it needs."""

from __future__ import annotations

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


async def get_taskplane(request: Request) -> Taskplane:
    """The Taskplane app this API serves."""
    tp: Taskplane = request.app.state.taskplane
    return tp


Tp = Annotated[Taskplane, Depends(get_taskplane)]


def require(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that lets a request through only with a valid key holding ``scope`` (or ``admin``)."""

    async def check_key(
        tp: Tp,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
    ) -> ApiKey:
        if credentials is None:
            raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'", None, _CHALLENGE)
        # Asked of Redis on every request, so a revoked key fails from the next request on.
        key = await run_in_threadpool(tp.api_keys.authenticate, credentials.credentials)
        if key is None:
            raise ApiError(401, "unauthorized", "invalid or revoked API key", None, _CHALLENGE)
        if not key.allows(scope):
            raise ApiError(403, "forbidden", f"this API key lacks the {scope!r} scope")
        return key

    return check_key
