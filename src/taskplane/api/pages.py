"""The dashboard page at ``/`` and its assets, served from the package (no CDN, no build step)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ASSETS = Path(__file__).parent / "dashboard"
#: The page loads only its own files and talks only to this API.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


#: The API docs' page (Swagger UI from the package): its one inline script is allowed by its hash.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


class DocsPolicy:
    """ASGI middleware: the ``/docs`` pages (HTML from FastAPI) get a Content-Security-Policy that allows
    their own files and, by hash, the inline scripts they carry; nothing else runs there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).rstrip("/").endswith(
            ("/docs", "/docs/oauth2-redirect")
        ):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body = bytearray()

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            body.extend(message.get("body", b""))
            if message.get("more_body") or start is None:
                return
            hashes = " ".join(
                "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
                for script in _INLINE_SCRIPT.findall(bytes(body))
            )
            headers = MutableHeaders(raw=list(start["headers"]))
            headers["Content-Security-Policy"] = DOCS_POLICY.format(hashes=hashes)
            headers["X-Content-Type-Options"] = "nosniff"
            headers["Content-Length"] = str(len(body))
            await send({**start, "headers": headers.raw})
            await send({"type": "http.response.body", "body": bytes(body)})

        await self.app(scope, receive, buffered)


def install_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at ``/`` (also under a mount prefix: every URL in it is relative)."""
    app.mount("/dashboard-assets", StaticFiles(directory=ASSETS), name="dashboard-assets")

    @app.get("/", include_in_schema=False)
    async def dashboard(request: Request) -> Response:
        path = str(request.scope.get("path", "/"))
        if not path.endswith("/"):  # relative URLs need the trailing slash (a mount at /ops gives /ops)
            return RedirectResponse(f"{request.scope.get('root_path', '')}/", status_code=308)
        return FileResponse(
            ASSETS / "index.html",
            headers={
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )
