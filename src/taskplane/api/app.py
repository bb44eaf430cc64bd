"""``create_app(tp)``: the HTTP API as a FastAPI app, to run alone or mount inside a service's own app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

import taskplane
from taskplane.api import (
    routes_dead_letters,
    routes_metrics,
    routes_schedules,
    routes_session,
    routes_system,
    routes_tasks,
)
from taskplane.api.body_limit import BodyLimitMiddleware
from taskplane.api.errors import ApiError, install_error_handlers
from taskplane.api.openapi import refine_schema
from taskplane.api.pages import DocsPolicy, install_dashboard
from taskplane.api.stream_hub import StreamHub
from taskplane.app import Taskplane

API_PREFIX = "/api/v1"


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query(request: Request) -> None:
    """Refuse query parameters an endpoint does not take (``?stat=dead`` must not list every task).

    Raises:
        ApiError: 422 naming the unknown parameters.
    """
    route = request.scope.get("route")
    known = _query_names(route.dependant) if isinstance(route, APIRoute) else set()
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = f"; this endpoint takes: {', '.join(sorted(known))}" if known else ""
        raise ApiError(
            422, "validation_error", f"unknown query parameter(s): {', '.join(unknown)}{takes}", {"unknown": unknown}
        )


def create_app(tp: Taskplane) -> FastAPI:
    """The API for ``tp``: endpoints under ``/api/v1``, Prometheus metrics at ``/metrics``, OpenAPI at
    ``/docs`` and ``/openapi.json`` (Swagger UI's files served from the package: works offline), and the
    dashboard at ``/``.

    Request bodies above ``tp.settings.api_max_body_bytes`` are refused with 413. Building the app
    does no I/O; Redis is first touched by a request.
    """
    hub = StreamHub(tp.redis_url, tp.settings.api_max_streams_per_key, tp.settings.api_max_streams)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await hub.close()

    app = FastAPIOffline(
        lifespan=lifespan,
        redoc_url=None,  # ReDoc fetches its logo from a CDN: only Swagger UI, which works offline
        title="taskplane",
        version=taskplane.__version__,
        description="Enqueue tasks, follow their progress, cancel them, operate queues, workers and dead letters.",
    )
    app.state.taskplane = tp
    app.state.stream_hub = hub
    app.state.metrics_registry = tp.metrics_registry()
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_size=tp.settings.api_max_body_bytes,
        max_header_size=tp.settings.api_max_header_bytes,
        read_timeout=tp.settings.api_read_timeout,
    )
    app.add_middleware(DocsPolicy)
    install_error_handlers(app)
    routers = (
        routes_tasks.router,
        routes_dead_letters.router,
        routes_schedules.router,
        routes_system.router,
        routes_session.router,
    )
    for router in routers:
        app.include_router(router, prefix=API_PREFIX, dependencies=[Depends(reject_unknown_query)])
    # Where Prometheus looks by default, outside the versioned prefix.
    app.include_router(routes_metrics.router, dependencies=[Depends(reject_unknown_query)])
    install_dashboard(app)
    refine_schema(app, tp.topology.names)
    return app
