"""``GET /metrics``: Prometheus metrics of the whole cluster (read from Redis, so any API replica answers)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from taskplane.api.auth import require
from taskplane.api.routes_tasks import ERRORS
from taskplane.observability.prometheus import CONTENT_TYPE, render

router = APIRouter(tags=["system"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
    dependencies=[Depends(require("read"))],
)
def metrics(request: Request) -> Response:
    """Task counters, runtimes, queue waits, queue depths, dead letters, workers and schedules (scope ``read``)."""
    return Response(content=render(request.app.state.metrics_registry), media_type=CONTENT_TYPE)
