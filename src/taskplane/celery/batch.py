"""Batch enqueue without the per-message path: one message template per batch, the publish hooks' batch
form, and one ``publish.lua`` call per :data:`SCRIPT_ITEMS` messages (each call atomic: every message of
it is queued with its record, or none is).

Used for the tasks whose publish hooks never find an existing task (no ``unique_for``); the others take
the one-call path per message (:mod:`taskplane.celery.direct`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import signals
from celery.utils import uuid

from taskplane.celery.direct import before_publish_signal, held_channel
from taskplane.celery.message import MessageTemplate
from taskplane.celery.publishing import PendingWrites
from taskplane.core.clock import now_ms
from taskplane.middleware.base import Publish

#: Messages per ``publish.lua`` call: large enough to spread its cost, small enough not to hold the server.
SCRIPT_ITEMS = 100


def batchable(task: Any) -> bool:
    """True if messages of ``task`` can be published by :func:`publish_many`."""
    return not getattr(task, "taskplane_unique_for", None)


def publish_many(
    app: Any,
    task: Any,
    calls: list[tuple[list[Any], dict[str, Any]]],
    queue: str,
    countdown: float | None,
    eta: datetime | None,
) -> list[str]:
    """Publish one message of ``task`` per (args, kwargs) in ``calls``, all to ``queue``; returns their
    ids in order. In a batch enqueue that collects publishes, the script calls are collected.

    Raises:
        PayloadTooLargeError: a message is over the payload limit (none of its script call was sent).
        redis.ConnectionError: Redis is unreachable (the script calls before were applied).
    """
    options = {key: value for key, value in task._get_exec_options().items() if value is not None}
    options["queue"] = queue
    parent = app.current_worker_task
    root_id = parent_id = None
    if parent is not None:
        root_id = parent.request.root_id or parent.request.id
        parent_id = parent.request.id
    template = MessageTemplate(app, task.name, queue, options, countdown, eta, root_id, parent_id)
    eta_ms = int(eta.timestamp() * 1000) if eta is not None else now_ms() + int(countdown * 1000) if countdown else None
    ids: list[str] = []
    with held_channel(app) as channel:
        for start in range(0, len(calls), SCRIPT_ITEMS):
            batch = app.stores.storage.batch()
            publishes = [
                Publish(task.name, args, kwargs, uuid(), queue, eta_ms, {}, True, task, batch)
                for args, kwargs in calls[start : start + SCRIPT_ITEMS]
            ]
            app.chain.publish_many(publishes)
            try:
                if _per_message(publishes):
                    _publish_messages(app, channel, template, publishes)
                else:
                    items = [(publish.task_id, publish.args, publish.kwargs) for publish in publishes]
                    channel.publish_template(queue, template, items, PendingWrites(batch))
            except BaseException:
                for publish in publishes:
                    app.chain.publish_failed(publish)
                raise
            ids.extend(publish.task_id for publish in publishes)
    return ids


def _publish_messages(app: Any, channel: Any, template: MessageTemplate, publishes: list[Publish]) -> None:
    """Publish with Celery's publish signals sent for each message, as its producer sends them."""
    name, queue = publishes[0].name, publishes[0].queue
    messages = []
    for publish in publishes:
        message, body = template.message(publish.task_id, publish.args, publish.kwargs, publish.headers)
        before_publish_signal(app, name, queue, message, body)
        messages.append((message, body))
    channel.publish_many(queue, [message for message, _ in messages], PendingWrites(publishes[0].batch))
    for message, body in messages:
        signals.after_task_publish.send(
            sender=name, body=body, headers=message["headers"], exchange="", routing_key=queue
        )


def _per_message(publishes: list[Publish]) -> bool:
    """True if the messages must be built one by one: Celery's publish signals have receivers, or a
    publish hook gave a message headers of its own."""
    signalled = signals.before_task_publish.receivers or signals.after_task_publish.receivers
    return bool(signalled) or any(publish.headers for publish in publishes)
