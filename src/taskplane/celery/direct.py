"""Publishing a plain task call without kombu's producer machinery.

Celery's ``send_task`` runs a call through the router, kombu's producer pool, ``maybe_declare``, the
retry wrapper, serializer lookup and exchange routing before the transport's ``_put`` writes one
Redis list entry: about two thirds of an enqueue's CPU time. For a call that uses nothing of that
(no links, chains, chords, groups, custom exchanges, serializers or compression), taskplane builds the
same message itself from a template (:mod:`taskplane.celery.message`: Celery's own ``amqp.as_task_v2``
once per task, queue and options, kombu's envelope) on a channel of its own pool
(:mod:`taskplane.celery.channels`), and the transport queues it in one round trip. While Celery's
``before_task_publish``/``after_task_publish`` signals have receivers, the message is built as a dict
and they are sent as Celery sends them. Any other call goes through Celery's ``send_task``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import redis
from celery import signals

from taskplane.celery.message import template_for
from taskplane.celery.publishing import pending_writes
from taskplane.compat import exec_options
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
) -> None:
    """Publish one plain call (see :func:`is_direct`); a call from a running task is added to its trail.

    Raises:
        redis.ConnectionError: Redis stayed unreachable through the retries.
    """
    task = options.get("task_type") or app.tasks.get(name)
    if task is not None:
        options = {**_defaults(task), **{key: value for key, value in options.items() if value is not None}}
    parent = app.current_worker_task
    template = template_for(app, name, queue, options, countdown, eta, parent)
    args, kwargs = args or (), kwargs or {}
    if not signals_listened() and not options.get("headers"):  # encoded from the template, no message dict
        pending = pending_writes.get()
        _put(app, lambda channel: channel.publish_template(queue, template, [(task_id, args, kwargs)], pending))
    else:
        message = template.message(task_id, args, kwargs, options.get("headers"))
        publish_signalled(app, name, queue, [message], lambda ms: _put(app, lambda channel: channel._put(queue, ms[0])))
    if parent is not None:
        parent.add_trail((options.get("result_cls") or app.AsyncResult)(task_id))


def _defaults(task: Any) -> dict[str, Any]:
    """The task's publish options that are set (Celery's ``_get_exec_options``, cached by Celery once per
    task; filtered here once per task as well)."""
    options = exec_options(task)
    cached: tuple[Any, dict[str, Any]] | None = task.__dict__.get("_taskplane_defaults")
    if cached is None or cached[0] is not options:
        cached = task.__dict__["_taskplane_defaults"] = (
            options,
            {key: value for key, value in options.items() if value is not None},
        )
    return cached[1]


def signals_listened() -> bool:
    """True while Celery's ``before_task_publish`` or ``after_task_publish`` has receivers."""
    return bool(signals.before_task_publish.receivers or signals.after_task_publish.receivers)


def publish_signalled(
    app: Any,
    name: str,
    queue: str,
    messages: list[tuple[dict[str, Any], Any]],
    put: Callable[[list[dict[str, Any]]], None],
) -> None:
    """Send Celery's ``before_task_publish`` for each (message, body), ``put`` the messages, then send
    ``after_task_publish`` for each, as Celery's producer does."""
    if signals.before_task_publish.receivers:
        for message, body in messages:
            before_publish_signal(app, name, queue, message, body)
    put([message for message, _ in messages])
    if signals.after_task_publish.receivers:
        for message, body in messages:
            signals.after_task_publish.send(
                sender=name, body=body, headers=message["headers"], exchange="", routing_key=queue
            )


def before_publish_signal(app: Any, name: str, queue: str, message: dict[str, Any], body: Any) -> None:
    """Send Celery's ``before_task_publish`` for a message, as Celery's producer sends it."""
    signals.before_task_publish.send(
        sender=name,
        body=body,
        exchange="",
        routing_key=queue,
        declare=[],
        headers=message["headers"],
        properties=message["properties"],
        retry_policy=app.conf.task_publish_retry_policy,
    )


_held: ContextVar[Any] = ContextVar("taskplane_held_channel", default=None)


@contextmanager
def holding_channel(app: Any) -> Iterator[None]:
    """Publish directly through one channel while the block runs (a batch takes it once, not per message)."""
    with app.publish_channels.channel() as channel:
        token = _held.set(channel)
        try:
            yield
        finally:
            _held.reset(token)


@contextmanager
def held_channel(app: Any) -> Iterator[Any]:
    """The channel held by :func:`holding_channel`, or one taken for the block."""
    held = _held.get()
    if held is not None:
        yield held
        return
    with app.publish_channels.channel() as channel:
        yield channel


def _put(app: Any, send: Callable[[Any], None]) -> None:
    """Run ``send`` on the held channel or a pooled one, retrying a lost connection briefly."""
    held = _held.get()
    if held is not None:
        send(held)
        return
    for attempt, delay in enumerate(RETRY_DELAYS):
        if delay:
            time.sleep(delay)
        pooled = app.publish_channels.channel()  # a new connection was retried within the pool's patience already
        try:
            with pooled as channel:
                send(channel)
            return
        except CONNECTION_ERRORS as exc:
            # No reply in time: the server may have it (frozen, slow), so waiting again would only add a
            # socket timeout; the publish's own claim keeps a later resend from applying it twice.
            if attempt == len(RETRY_DELAYS) - 1 or isinstance(exc, redis.TimeoutError):
                raise
