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
#: How deep a message's envelope (headers, properties) and its body's arguments may nest. Deeper ones are
#: refused before anything walks them (Celery, kombu and the dead-letter path all recurse).
MAX_ENVELOPE_DEPTH = 32
MAX_BODY_DEPTH = 100


def parse_item(item: str, size: int = 0, limit: int = 0) -> tuple[dict[str, Any] | None, str | None]:
    """The one parser of a fetched queue item: (the kombu message, None), or (None or the message, one line
    saying why it must be dead-lettered). Nothing else reads an item before this did: its size is checked
    first, its JSON is read with a bounded depth (an item Lua's JSON reads but Python's does not, ``nan``
    or hex numbers, is refused here), and the envelope's shape (an object with ``properties``,
    ``headers`` and ``delivery_info`` objects, a string ``body``) before any code trusts it."""
    if limit and size > limit:
        return None, f"message is {size} bytes; the limit is {limit} (TASKPLANE_MAX_PAYLOAD_BYTES)"
    try:
        message = json.loads(item)
    except RecursionError:
        return None, "message is nested too deeply to read"
    except ValueError as exc:
        return None, f"message is not JSON: {str(exc)[:200]}"
    if not isinstance(message, dict):
        return None, f"message must be a JSON object, not {type(message).__name__}"
    properties, headers = message.get("properties"), message.get("headers")
    if not isinstance(properties, dict):
        return None, "message properties must be an object"
    if headers is not None and not isinstance(headers, dict):
        return None, f"message headers must be an object, not {type(headers).__name__}"
    if not isinstance(properties.get("delivery_info") or {}, dict):
        return None, "delivery_info must be an object"
    if not isinstance(message.get("body"), str):
        return None, "message body must be a string"
    if _deeper_than({k: v for k, v in message.items() if k != "body"}, MAX_ENVELOPE_DEPTH):
        return None, f"message headers or properties nest deeper than {MAX_ENVELOPE_DEPTH} levels"
    return message, None


def _deeper_than(value: Any, limit: int) -> bool:
    """True if ``value`` nests lists and objects more than ``limit`` levels deep (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            current = list(current.values())
        elif not isinstance(current, list):
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in current if isinstance(child, dict | list))
    return False


def problem_with(message: dict[str, Any]) -> str | None:
    """One line saying what is wrong with a kombu message :func:`parse_item` read, or None when it is a
    valid task message. A message that is not protocol 2 or not JSON is left to Celery, which refuses what
    it does not accept by itself."""
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
    except RecursionError:
        return "body is nested too deeply to read"
    except (binascii.Error, ValueError) as exc:
        return f"body is not {'base64 of ' if encoding == 'base64' else ''}JSON: {str(exc)[:200]}"
    if _deeper_than(decoded, MAX_BODY_DEPTH):
        return f"body nests deeper than {MAX_BODY_DEPTH} levels"
    if not (
        isinstance(decoded, list)
        and len(decoded) == 3
        and isinstance(decoded[0], list)
        and isinstance(decoded[1], dict)
        and isinstance(decoded[2], dict | None)
    ):
        return "body must be [args (a list), kwargs (an object), embed (an object)]"
    return None
