"""One JSON shape for every error the API answers: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from taskplane.app import Taskplane
from taskplane.client.handle import TaskFailedError
from taskplane.core.errors import (
    ConfigurationError,
    EmbeddedServerError,
    IdempotencyConflictError,
    InvalidRequestError,
    NotFinishedError,
    NotFoundError,
    PayloadTooLargeError,
    RedisUnavailableError,
    TaskArgumentsError,
    TaskplaneError,
    UnknownTaskError,
)
from taskplane.redis.client import CONNECTION_ERRORS, unavailable

log = logging.getLogger("taskplane.api")

#: Library errors and the answer each gets: (HTTP status, error code).
LIBRARY_ERRORS: tuple[tuple[type[TaskplaneError], int, str], ...] = (
    (UnknownTaskError, 404, "unknown_task"),
    (NotFoundError, 404, "not_found"),
    (TaskArgumentsError, 422, "bad_arguments"),
    (InvalidRequestError, 422, "invalid_request"),
    (ConfigurationError, 422, "invalid_option"),
    (IdempotencyConflictError, 409, "idempotency_conflict"),
    (NotFinishedError, 409, "not_finished"),
    (TaskFailedError, 409, "no_result"),
    (PayloadTooLargeError, 413, "payload_too_large"),
    (RedisUnavailableError, 503, "redis_unavailable"),
    (EmbeddedServerError, 503, "redis_unavailable"),
)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "unavailable",
}


BODY_PARSE_ERROR = "There was an error parsing the body"


class ApiError(Exception):
    """An error answered as it is: status, code, one-line message, optional details and headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The response for one error."""
    body = {"error": {"code": code, "message": message, "details": jsonable_encoder(details)}}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only location, message and type: the rejected input is the caller's own and may be large.
    return [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    ]


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves at the request's path (Starlette's 405 names only the first route's)."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _taskplane(request: Request) -> Taskplane:
    tp: Taskplane = request.app.state.taskplane
    return tp


async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
    """An ApiError as it is."""
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def on_library_error(request: Request, exc: Exception) -> JSONResponse:
    """A TaskplaneError by its kind (LIBRARY_ERRORS); unknown tasks list the known ones."""
    for kind, status, code in LIBRARY_ERRORS:
        if isinstance(exc, kind):
            details = {"known_tasks": _taskplane(request).task_names()} if kind is UnknownTaskError else None
            return error_response(status, code, str(exc), details)
    log.error("unmapped taskplane error on %s %s: %s", request.method, request.url.path, exc)
    return error_response(400, "bad_request", str(exc))


async def on_connection_error(request: Request, exc: Exception) -> JSONResponse:
    """Redis could not be reached: 503, naming the server (without its password)."""
    return error_response(503, "redis_unavailable", str(unavailable(_taskplane(request).redis_url, exc)))


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette/FastAPI HTTP errors (404 path, 405 method, 413 body, ...) in the one shape."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == BODY_PARSE_ERROR:  # FastAPI's answer to undecodable bytes
        return error_response(422, "validation_error", "the request body is not valid JSON")
    code = HTTP_CODES.get(exc.status_code, "error")
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request.app, request))}
    return error_response(exc.status_code, code, str(exc.detail), None, headers)


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """Request validation: 422 with the first problem as the message and all of them as details."""
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"])
    if first.get("type") == "json_invalid":
        message = "the request body is not valid JSON"  # same words as for undecodable bytes
    else:
        message = f"{where}: {first['msg']}" if where else str(first["msg"])
    return error_response(422, "validation_error", message, details)


async def on_bug(request: Request, exc: Exception) -> JSONResponse:
    """Anything else: 500 without internals (they go to the log)."""
    log.exception("internal error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error; the API log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Answer library errors, HTTP errors, validation errors, a down Redis and bugs in the one shape."""
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(TaskplaneError, on_library_error)
    for kind in CONNECTION_ERRORS:
        if issubclass(kind, Exception):
            app.add_exception_handler(kind, on_connection_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_bug)
