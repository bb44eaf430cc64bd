"""Celery protocol 2 task messages, built from a template instead of one ``as_task_v2`` call per message.

``amqp.as_task_v2`` recomputes everything for every message, including two ``saferepr`` walks and the
origin, time limits and ETA that are the same for every message of one task, queue and set of options.
:class:`MessageTemplate` calls it once and then fills in only what differs per message: the id (also
the correlation id and, without a parent task, the root id), the arguments and their reprs, and the
delivery tag. The message is the one ``as_task_v2`` and kombu's virtual channel would build.
"""

from __future__ import annotations

import base64
import functools
import itertools
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from celery.utils.saferepr import saferepr
from kombu.utils.json import JSONEncoder, dumps

from taskplane.core.protocol import Header

#: Argument values (besides plain strings) whose ``repr`` is exactly what Celery's ``saferepr`` writes.
PLAIN = (int, float, bool, type(None))
#: The header that says when a message is ready (taskplane.core.protocol.Header.READY).
READY_HEADER = Header.READY.value
#: Templates kept per app; the cache is emptied when it grows past this many.
CACHE_LIMIT = 256
#: Look the running task up (the default of :func:`template_for`'s ``parent``).
LOOK_UP = object()
#: kombu's ``dumps`` (its encoder, with the types registered with kombu) without an encoder built per call.
_BODY = JSONEncoder()
_tags: tuple[int, str, Iterator[int]] | None = None


def delivery_tag() -> str:
    """A delivery tag no other message has: a random prefix per process and a counter. kombu makes a UUID
    per message, which costs a system call (``os.urandom``) on every enqueue."""
    global _tags
    pid = os.getpid()
    if _tags is None or _tags[0] != pid:  # a forked child draws its own prefix
        _tags = (pid, uuid.uuid4().hex, itertools.count())
    return f"{_tags[1]}.{next(_tags[2]):x}"


def argument_repr(value: list[Any] | tuple[Any, ...] | dict[str, Any], maxsize: int, maxlevels: int) -> str:
    """What Celery's ``saferepr(value, maxsize, maxlevels)`` returns, by plain ``repr`` where they agree
    (flat arguments of plain values, short enough), which is several times faster."""
    items = list(value.items()) if isinstance(value, dict) else [(None, item) for item in value]
    if all(_plain(key) and _plain(item) for key, item in items):
        text = repr(value)
        if len(text) <= maxsize:
            return text
    return saferepr(value, maxsize, maxlevels=maxlevels)


def _plain(value: Any) -> bool:
    """True if ``saferepr`` writes ``value`` as ``repr`` does (it does not escape inside strings)."""
    if isinstance(value, str):
        return value.isprintable() and "\\" not in value and "'" not in value
    return isinstance(value, PLAIN)


class MessageTemplate:
    """The fixed part of the messages of one task name, queue and option set (see the module doc)."""

    def __init__(
        self,
        app: Any,
        name: str,
        queue: str,
        options: dict[str, Any],
        countdown: float | None = None,
        eta: datetime | None = None,
        root_id: str | None = None,
        parent_id: str | None = None,
    ) -> None:
        self._maxsize = (app.amqp.argsrepr_maxsize, app.amqp.kwargsrepr_maxsize)
        self._maxlevels = app.conf.get("task_repr_maxlevels", 3)
        self._root_id = root_id
        self.headers, properties, self.embed, _ = app.amqp.as_task_v2(
            "",
            name,
            (),
            {},
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
            ignore_result=options.get("ignore_result"),  # None: the task decides (Celery 5.7 reads it so)
        )
        self.embed = self.embed[2]
        properties.update(
            delivery_mode=options.get("delivery_mode") or 2,
            delivery_info={"exchange": "", "routing_key": queue},
            priority=options.get("priority") or 0,
            body_encoding="base64",
        )
        self.properties = properties

    def message(
        self,
        task_id: str,
        args: list[Any] | tuple[Any, ...],
        kwargs: dict[str, Any],
        headers: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], Any]:
        """One message for this call, with extra ``headers`` (the publish hooks'): (the kombu envelope,
        the Celery body it carries)."""
        headers = {**self.headers, **headers} if headers else dict(self.headers)
        headers["id"] = task_id
        if not self._root_id:
            headers["root_id"] = task_id
        headers["argsrepr"] = argument_repr(args, self._maxsize[0], self._maxlevels)
        headers["kwargsrepr"] = argument_repr(kwargs, self._maxsize[1], self._maxlevels)
        properties = dict(self.properties)
        properties["correlation_id"] = task_id
        properties["delivery_tag"] = delivery_tag()
        body = (args, kwargs, self.embed)
        envelope = {
            "body": base64.b64encode(dumps(body).encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": properties,
        }
        return envelope, body

    @functools.cached_property
    def encoder(self) -> MessageEncoder:
        """The encoder of this template's messages as the transport queues them (built once)."""
        return MessageEncoder(self)


#: Stands for a value that differs per message in :class:`MessageEncoder`'s encoded template.
SLOT = "@@taskplane-slot-{}@@"
#: The values a :class:`MessageEncoder` fills in, by slot number.
SLOTS = ("id", "argsrepr", "kwargsrepr", "body", "correlation_id", "delivery_tag", "root_id", "ready")


class MessageEncoder:
    """Encodes messages of one template straight to the JSON the transport queues: the envelope is encoded
    once, with a slot for each value that differs per message; each message then only fills the slots
    (ids, argument reprs, body, the time it is ready), several times faster than building and encoding
    a dict per message. The text is what ``dumps`` gives for the message dict the transport would queue
    (``eta`` as :attr:`Header.ETA`: the transport keeps such messages in the delayed set)."""

    def __init__(self, template: MessageTemplate) -> None:
        self._template = template
        headers = {key: value for key, value in template.headers.items() if key != "eta"}
        if template.headers.get("eta"):
            headers[Header.ETA.value] = template.headers["eta"]
        headers.update(id=SLOT.format(0), argsrepr=SLOT.format(1), kwargsrepr=SLOT.format(2))
        if not template._root_id:
            headers["root_id"] = SLOT.format(6)
        headers[READY_HEADER] = SLOT.format(7)
        properties = {**template.properties, "correlation_id": SLOT.format(4), "delivery_tag": SLOT.format(5)}
        envelope = {
            "body": SLOT.format(3),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": properties,
        }
        text = dumps(envelope)
        self._parts: list[str] = []
        self._order: list[int] = []
        while True:
            found = [(text.find(f'"{SLOT.format(index)}"'), index) for index in range(len(SLOTS))]
            found = [(at, index) for at, index in found if at >= 0]
            if not found:
                break
            at, index = min(found)
            self._parts.append(text[:at])
            self._order.append(index)
            text = text[at + len(SLOT.format(index)) + 2 :]
        self._parts.append(text)

    def encode(
        self, task_id: str, args: list[Any] | tuple[Any, ...], kwargs: dict[str, Any], ready_ms: int
    ) -> tuple[str, int]:
        """The queued JSON of one message: (the text, the length of its encoded body)."""
        template = self._template
        body = base64.b64encode(_BODY.encode((args, kwargs, template.embed)).encode()).decode()
        quoted_id = _quoted(task_id)
        values = (
            quoted_id,
            _quoted(argument_repr(args, template._maxsize[0], template._maxlevels)),
            _quoted(argument_repr(kwargs, template._maxsize[1], template._maxlevels)),
            f'"{body}"',
            quoted_id,
            f'"{delivery_tag()}"',
            quoted_id,
            str(ready_ms),
        )
        parts = self._parts
        pieces = [parts[0]]
        for position, index in enumerate(self._order):
            pieces.append(values[index])
            pieces.append(parts[position + 1])
        return "".join(pieces), len(body)


def _quoted(text: str) -> str:
    """``text`` as a JSON string (as ``dumps`` writes it), without the encoder for plain text."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return str(dumps(text))


def template_for(
    app: Any,
    name: str,
    queue: str,
    options: dict[str, Any],
    countdown: float | None = None,
    eta: datetime | None = None,
    parent: Any = LOOK_UP,
) -> MessageTemplate:
    """The template of a call (``options`` are the task's defaults merged with the call's; their
    ``headers`` go per message), with the running task as its parent when called from one (``parent``:
    the caller's ``app.current_worker_task`` if it has it already). Cached per app, process, thread,
    name, queue and options, unless the call has a countdown or ETA, an ``expires`` relative to now, or
    a parent."""
    fixed = {key: value for key, value in options.items() if key != "headers"}
    if parent is LOOK_UP:
        parent = app.current_worker_task
    if parent is not None:
        root_id, parent_id = parent.request.root_id or parent.request.id, parent.request.id
        return MessageTemplate(app, name, queue, fixed, countdown, eta, root_id, parent_id)
    if countdown or eta is not None or isinstance(fixed.get("expires"), (int, float)):
        return MessageTemplate(app, name, queue, fixed, countdown, eta)
    cache: dict[Any, MessageTemplate] = app.__dict__.setdefault("_taskplane_templates", {})
    try:
        key: Any = (name, queue, app.thread_oid, os.getpid(), _frozen(fixed))  # a forked child has its own origin
        template = cache.get(key)
    except TypeError:  # an unhashable option value: not cached
        return MessageTemplate(app, name, queue, fixed)
    if template is None:
        if len(cache) >= CACHE_LIMIT:
            cache.clear()
        template = cache[key] = MessageTemplate(app, name, queue, fixed)
    return template


def _frozen(options: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((key, _frozen(value) if isinstance(value, dict) else value) for key, value in options.items()))
