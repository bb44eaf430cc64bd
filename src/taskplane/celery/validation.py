"""What a task message must look like before a worker acts on it (Celery's protocol 2, JSON body).

Celery trusts a message's fields: a body that is not base64, an unknown body encoding, a ``timelimit`` of
``"zz"`` or a body that is not ``[args, kwargs, embed]`` stops the consumer (the message then returns and
stops the next worker too) or fails the task with a misleading error. The transport checks each message
here first and dead-letters one that does not fit as ``malformed``, with the reason this module names.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

JSON_TYPES = ("application/json",)


def problem_with(message: dict[str, Any], size: int = 0, limit: int = 0) -> str | None:
    """One line saying what is wrong with a kombu message (``size`` bytes as queued; ``limit`` the payload
    limit, 0 for none), or None when it is a valid task message. A message that is not protocol 2 or not
    JSON is left to Celery, which refuses what it does not accept by itself."""
    if limit and size > limit:
        return f"message is {size} bytes; the limit is {limit} (TASKPLANE_MAX_PAYLOAD_BYTES)"
    headers = message.get("headers") or {}
    properties = message["properties"]
    info = properties.get("delivery_info") or {}
    if not isinstance(info.get("routing_key"), str) or not isinstance(info.get("exchange"), str):
        return "delivery_info lacks a routing_key or an exchange"
    if "task" not in headers:
        return None  # protocol 1 or not a task message: Celery decides
    return _header_problem(headers) or _body_problem(message, properties)


def _header_problem(headers: dict[str, Any]) -> str | None:
    for name in ("task", "id"):
        if not isinstance(headers.get(name), str) or not headers[name]:
            return f"header {name!r} must be a non-empty string, not {headers.get(name)!r}"
    retries = headers.get("retries", 0)
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0):
        return f"header 'retries' must be a count, not {retries!r}"
    limits = headers.get("timelimit")
    if limits is not None and not (
        isinstance(limits, list | tuple)
        and len(limits) == 2
        and all(limit is None or (isinstance(limit, int | float) and not isinstance(limit, bool)) for limit in limits)
    ):
        return f"header 'timelimit' must be [soft, hard] seconds or nulls, not {limits!r}"
    for name in ("eta", "expires"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            return f"header {name!r} must be an ISO 8601 time, not {value!r}"
    return None


def _body_problem(message: dict[str, Any], properties: dict[str, Any]) -> str | None:
    encoding = properties.get("body_encoding")
    body = message["body"]
    if encoding not in (None, "base64"):
        return f"unknown body_encoding {encoding!r}"
    if message.get("content-type") not in JSON_TYPES:
        return None  # Celery refuses content types it does not accept, by itself
    try:
        raw = base64.b64decode(body, validate=True) if encoding == "base64" else body.encode()
        decoded = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        return f"body is not {'base64 of ' if encoding == 'base64' else ''}JSON: {str(exc)[:200]}"
    if not (
        isinstance(decoded, list)
        and len(decoded) == 3
        and isinstance(decoded[0], list)
        and isinstance(decoded[1], dict)
        and isinstance(decoded[2], dict | None)
    ):
        return "body must be [args (a list), kwargs (an object), embed (an object)]"
    return None
