"""Batch enqueue without the per-message path: one message template per batch, the publish hooks' batch
form, and one ``publish.lua`` call per :data:`SCRIPT_ITEMS` messages (each call atomic: every message of
it is queued with its record, or none is).

Used for the tasks whose publish hooks never find an existing task (no ``unique_for``); the others take
the one-call path per message (:mod:`taskplane.celery.direct`).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from taskplane.celery.direct import held_channel, publish_signalled, signals_listened
from taskplane.celery.message import template_for
from taskplane.celery.publishing import PendingWrites
from taskplane.compat import exec_options
from taskplane.core.clock import due_ms
from taskplane.core.ids import new_task_id
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
) -> list[Publish]:
    """Publish one message of ``task`` per (args, kwargs) in ``calls``, all to ``queue``; returns the
    publishes in order. In a batch enqueue that collects publishes, the script calls are collected.

    Raises:
        PayloadTooLargeError: a message is over the payload limit (none of its script call was sent).
        redis.ConnectionError: Redis is unreachable (the script calls before were applied).
    """
    options = {key: value for key, value in exec_options(task).items() if value is not None}
    options["queue"] = queue
    template = template_for(app, task.name, queue, options, countdown, eta)
    eta_ms = due_ms(countdown, eta)
    done: list[Publish] = []
    with held_channel(app) as channel:
        for start in range(0, len(calls), SCRIPT_ITEMS):
            batch = app.stores.storage.batch()
            publishes = [
                Publish(task.name, args, kwargs, new_task_id(), queue, eta_ms, {}, True, task, batch)
                for args, kwargs in calls[start : start + SCRIPT_ITEMS]
            ]
            app.chain.publish_many(publishes)
            try:
                if signals_listened() or any(publish.headers for publish in publishes):  # a message dict each
                    messages = [template.message(p.task_id, p.args, p.kwargs, p.headers) for p in publishes]
                    put = functools.partial(channel.publish_many, queue, pending=PendingWrites(batch))
                    publish_signalled(app, task.name, queue, messages, put)
                else:
                    items = [(publish.task_id, publish.args, publish.kwargs) for publish in publishes]
                    channel.publish_template(queue, template, items, PendingWrites(batch))
            except BaseException:
                for publish in publishes:
                    app.chain.publish_failed(publish)
                raise
            app.chain.published(publishes)
            done.extend(publishes)
    return done
