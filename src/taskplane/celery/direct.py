"""Publishing a plain task call without kombu's producer machinery.

Celery's ``send_task`` runs a call through the router, kombu's producer pool, ``maybe_declare``, the
retry wrapper, serializer lookup and exchange routing before the transport's ``_put`` writes one
Redis list entry: about two thirds of an enqueue's CPU time. For a call that uses nothing of that
(no links, chains, chords, groups, custom exchanges, serializers or compression), taskplane builds the
same message itself: the headers, properties and body from Celery's own ``amqp.as_task_v2``, the
envelope as kombu's virtual channel builds it, and hands it to the transport's ``_put`` (one round
trip). Celery's ``before_task_publish``/``after_task_publish`` signals are sent as Celery sends them.
Any other call goes through Celery's ``send_task``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from celery import signals
from celery.utils import uuid
from kombu.utils.json import dumps

from taskplane.redis.client import CONNECTION_ERRORS

#: Options a direct publish understands; any other (a link, a chain, a producer...) goes through Celery.
DIRECT_OPTIONS = frozenset(
    {
        "queue",
        "headers",
        "priority",
        "retries",
        "time_limit",
        "soft_time_limit",
        "expires",
        "ignore_result",
        "shadow",
        "exchange",
        "routing_key",
        "serializer",
        "delivery_mode",
        "compression",
        "immediate",
        "mandatory",
        "task_type",
        "result_cls",
    }
)
#: A failed write is tried again this many times, this far apart (Celery's task_publish_retry_policy).
RETRY_DELAYS = (0.0, 0.2)


def is_direct(queue: str, options: dict[str, Any]) -> bool:
    """True if a call with these ``send_task`` options can be published directly."""
    if any(value is not None and key not in DIRECT_OPTIONS for key, value in options.items()):
        return False
    if options.get("exchange") not in (None, "", queue) or options.get("routing_key") not in (None, "", queue):
        return False
    return options.get("serializer") in (None, "json") and options.get("compression") is None


def publish_direct(
    app: Any,
    name: str,
    args: Any,
    kwargs: Any,
    task_id: str,
    queue: str,
    countdown: float | None,
    eta: Any,
    options: dict[str, Any],
) -> Any:
    """Publish one plain call (see :func:`is_direct`); returns its AsyncResult.

    Raises:
        redis.ConnectionError: Redis stayed unreachable through the retries.
    """
    task = options.get("task_type") or app.tasks.get(name)
    if task is not None:
        defaults = {key: value for key, value in task._get_exec_options().items() if value is not None}
        options = {**defaults, **{key: value for key, value in options.items() if value is not None}}
    root_id = parent_id = None
    parent = app.current_worker_task
    if parent is not None:
        root_id = parent.request.root_id or parent.request.id
        parent_id = parent.request.id
    ignore_result = bool(options.get("ignore_result", False))
    headers, properties, body, _ = app.amqp.as_task_v2(
        task_id,
        name,
        args,
        kwargs,
        countdown=countdown,
        eta=eta,
        expires=options.get("expires"),
        retries=options.get("retries") or 0,
        reply_to=app.thread_oid,
        time_limit=options.get("time_limit"),
        soft_time_limit=options.get("soft_time_limit"),
        root_id=root_id,
        parent_id=parent_id,
        shadow=options.get("shadow"),
        ignore_result=ignore_result,
    )
    headers.update(options.get("headers") or {})
    priority = options.get("priority")
    if signals.before_task_publish.receivers:
        signals.before_task_publish.send(
            sender=name,
            body=body,
            exchange="",
            routing_key=queue,
            declare=[],
            headers=headers,
            properties=properties,
            retry_policy=app.conf.task_publish_retry_policy,
        )
    properties.update(
        delivery_mode=options.get("delivery_mode") or 2,
        delivery_info={"exchange": "", "routing_key": queue},
        priority=priority or 0,
        body_encoding="base64",
        delivery_tag=uuid(),
    )
    message = {
        "body": base64.b64encode(dumps(body).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": properties,
    }
    _put(app, queue, message)
    if signals.after_task_publish.receivers:
        signals.after_task_publish.send(sender=name, body=body, headers=headers, exchange="", routing_key=queue)
    result = (options.get("result_cls") or app.AsyncResult)(task_id)
    result.ignored = ignore_result
    if parent is not None:
        parent.add_trail(result)
    return result


_held: ContextVar[Any] = ContextVar("taskplane_held_producer", default=None)


@contextmanager
def holding_producer(app: Any) -> Iterator[None]:
    """Publish directly through one pooled producer while the block runs (a batch takes it once, not per
    message)."""
    with app.producer_pool.acquire(block=True) as producer:
        token = _held.set(producer)
        try:
            yield
        finally:
            _held.reset(token)


def _put(app: Any, queue: str, message: dict[str, Any]) -> None:
    """Hand the message to the transport of a pooled connection, retrying a lost connection briefly."""
    held = _held.get()
    if held is not None:
        held.channel._put(queue, message)
        return
    for attempt, delay in enumerate(RETRY_DELAYS):
        if delay:
            time.sleep(delay)
        try:
            with app.producer_pool.acquire(block=True) as producer:
                producer.channel._put(queue, message)
            return
        except CONNECTION_ERRORS:
            if attempt == len(RETRY_DELAYS) - 1:
                raise
