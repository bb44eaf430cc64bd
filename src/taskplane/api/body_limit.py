"""A request body size limit that answers 413 in the API's error shape.

FastAPI's own ``max_body_size`` answers a plain-text 413 and replaces any response to a request whose
Content-Length is over the limit, so the one JSON error shape could not hold; this does the same job.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskplane.api.errors import error_response


class BodyTooLarge(HTTPException):
    """Raised while reading a streamed body that passes the limit (answered by the error handlers)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is over the {limit}-byte limit")


class BodyLimitMiddleware:
    """Refuses bodies over ``max_body_size`` bytes: at once when Content-Length says so, else while reading."""

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_size:
            message = f"request body of {declared} bytes is over the {self.max_body_size}-byte limit"
            await error_response(413, "payload_too_large", message)(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_size:
                    raise BodyTooLarge(self.max_body_size)
            return message

        await self.app(scope, receive_within_limit, send)
