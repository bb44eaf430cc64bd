"""Request limits in the API's error shape: header size (431), body size (413), body read time (408).

FastAPI's own ``max_body_size`` answers a plain-text 413 and replaces any response to a request whose
Content-Length is over the limit, so the one JSON error shape could not hold; this does the same job.
uvicorn's httptools parser takes headers of any size and waits for a body as long as the client likes;
the header and read limits here bound both (a client slow to send its headers is bounded by
``api_header_timeout``, :mod:`taskplane.api.serving`).
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskplane.api.errors import error_response


class BodyTooLarge(HTTPException):
    """Raised while reading a streamed body that passes the limit (answered by the error handlers)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is over the {limit}-byte limit")


class BodyReadTimeout(HTTPException):
    """Raised when a client takes longer than the read timeout to send its body."""

    def __init__(self, timeout: float) -> None:
        super().__init__(408, f"the request body did not arrive within {timeout:g} s")


class BodyLimitMiddleware:
    """Refuses header sets over ``max_header_size`` bytes (431), bodies over ``max_body_size`` bytes (413: at
    once when Content-Length says so, else while reading) and bodies slower than ``read_timeout`` (408)."""

    def __init__(
        self, app: ASGIApp, max_body_size: int, max_header_size: int = 16 * 1024, read_timeout: float = 30.0
    ) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.max_header_size = max_header_size
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_bytes = sum(len(name) + len(value) for name, value in scope["headers"])
        if header_bytes > self.max_header_size:
            message = f"request headers of {header_bytes} bytes are over the {self.max_header_size}-byte limit"
            await error_response(431, "headers_too_large", message)(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.read_timeout
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_size:
            message = f"request body of {declared} bytes is over the {self.max_body_size}-byte limit"
            await error_response(413, "payload_too_large", message)(scope, receive, send)
            return
        received = 0
        complete = False

        async def receive_within_limit() -> Message:
            nonlocal received, complete
            if complete:  # the body is in: what is awaited now is the client leaving (a stream), unbounded
                return await receive()
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0.001))
            except TimeoutError:
                raise BodyReadTimeout(self.read_timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_size:
                    raise BodyTooLarge(self.max_body_size)
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        await self.app(scope, receive_within_limit, send)
