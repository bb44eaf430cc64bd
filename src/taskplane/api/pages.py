"""The dashboard page at ``/`` and its assets, served from the package (no CDN, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "dashboard"
#: The page loads only its own files and talks only to this API.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


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
