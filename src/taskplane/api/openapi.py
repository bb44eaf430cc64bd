"""The published schema says what the API accepts: rules pydantic's models cannot state are added to the
generated OpenAPI document (FastAPI's documented way: a replaced ``app.openapi``).

- a queue a task is sent to must be declared: ``queue`` of an enqueue or a batch, and ``to_queue`` of a
  requeue, list the app's queues (``enum``);
- an enqueue gives ``countdown`` or ``eta``, not both (``not``).

What the schema cannot state, the endpoints' descriptions do: which dead letters a requeue or purge selects
(ids, or a filter, or ``all``; not several), and that the task named must be one the workers know.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

#: (schema component, property) naming a queue that must be declared.
QUEUE_FIELDS = (("EnqueueRequest", "queue"), ("BatchRequest", "queue"), ("DeadLetterSelection", "to_queue"))


def refine_schema(app: FastAPI, queues: Callable[[], list[str]]) -> None:
    """Make ``app``'s OpenAPI document state the rules above (built once, on first request for it)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.get("components", {}).get("schemas", {})
        for component, field in QUEUE_FIELDS:
            properties = components.get(component, {}).get("properties", {})
            if field in properties:
                described = {
                    key: properties[field][key] for key in ("title", "description") if key in properties[field]
                }
                queue = {"type": "string", "enum": queues()}
                properties[field] = {"anyOf": [queue, {"type": "null"}], "default": None, **described}
        enqueue = components.get("EnqueueRequest")
        if enqueue is not None:
            both = {"countdown": {"type": "number"}, "eta": {"type": "string"}}
            enqueue["not"] = {"required": ["countdown", "eta"], "properties": both}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
