"""``create_app(tp)``: the HTTP API as a FastAPI app, to run alone or mount inside a service's own app."""

from __future__ import annotations

from fastapi import FastAPI

import taskplane
from taskplane.api import routes_dead_letters, routes_system, routes_tasks
from taskplane.api.body_limit import BodyLimitMiddleware
from taskplane.api.errors import install_error_handlers
from taskplane.app import Taskplane

API_PREFIX = "/api/v1"


def create_app(tp: Taskplane) -> FastAPI:
    """The API for ``tp``: endpoints under ``/api/v1``, OpenAPI at ``/docs`` and ``/openapi.json``.

    Request bodies above ``tp.settings.api_max_body_bytes`` are refused with 413. Building the app
    does no I/O; Redis is first touched by a request.
    """
    app = FastAPI(
        title="taskplane",
        version=taskplane.__version__,
        description="Enqueue tasks, follow their progress, cancel them, operate queues, workers and dead letters.",
    )
    app.state.taskplane = tp
    app.add_middleware(BodyLimitMiddleware, max_body_size=tp.settings.api_max_body_bytes)
    install_error_handlers(app, tp)
    for router in (routes_tasks.router, routes_dead_letters.router, routes_system.router):
        app.include_router(router, prefix=API_PREFIX)
    return app
