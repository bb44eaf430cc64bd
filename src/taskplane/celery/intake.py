"""What the fetch hands to Celery (:mod:`taskplane.celery.fetch`): one fetched item, checked (UTF-8, a kombu
message, within the payload limit, signed when signing is on, a valid task message, not due later), and
delivered to the consumer with what the fetch did to start its task; or dead-lettered instead."""

from __future__ import annotations

from typing import Any

from taskplane.celery.validation import parse_item, problem_with
from taskplane.compat import deliver
from taskplane.core.protocol import Header
from taskplane.core.signing import verify


def taken_from(message: dict[str, Any], queue: str) -> dict[str, Any]:
    """Make ``queue``, the queue a message was taken from, its routing key: what the worker reads as the task's
    queue (its record, cancellation and metrics are that queue's, as the fetch's start and the lease's return
    are). A client that published with another routing key, one of Celery's exchange routes or a hand-made
    message, would otherwise put the task's keys under a queue it was never in (on a cluster, in another slot)."""
    properties = message["properties"]
    info = properties["delivery_info"] = properties.get("delivery_info") or {}
    info["routing_key"] = queue
    return message


class Intake:
    """Mixin for :class:`taskplane.celery.transport.Channel` (needs kombu's Redis channel under it)."""

    #: Tags the fetch script put in flight that the QoS has not recorded yet, with their queues.
    _taskplane_fetched: dict[str, str]

    def _take(self, queue: str, item: str, tag: str | None, started: str | None) -> bool:
        """Hand one fetched item to the consumer with what the fetch did to start it (``started``: see
        :attr:`Header.STARTED`; None: not started); False if it was dead-lettered instead."""
        channel: Any = self
        if not tag:
            self._quarantined(queue, item)
            return False
        message, problem = parse_item(item, len(item), self._payload_limit())
        if message is None:
            self._invalid(queue, item, {}, tag, problem or "unreadable")
            return False
        keys = self._signing_keys()
        priority = message["properties"].get("priority")
        if keys and not verify(message["body"], message.get("headers") or {}, keys, queue, priority):
            self._forged(queue, item, message, tag)
            return False
        problem = problem or problem_with(message)
        if problem is not None:
            self._invalid(queue, item, message, tag, problem)
            return False
        taken_from(message, queue)
        if self._deferred(queue, message, tag):
            return False
        headers = message.get("headers")
        if started:
            if headers is None:
                headers = message["headers"] = {}
            headers[Header.STARTED.value] = started
        elif headers:
            headers.pop(Header.STARTED.value, None)  # only this channel says what the fetch did
        self._taskplane_fetched[tag] = queue  # in flight already: the QoS writes nothing
        try:
            deliver(channel, message, queue)
        except channel.connection_errors:
            raise
        except Exception as exc:  # whatever else a message can do to Celery, it must not stop the consumer
            self._taskplane_fetched.pop(tag, None)
            self._invalid(queue, item, message, tag, f"{type(exc).__name__}: {exc}"[:500])
            return False
        return True

    def _quarantined(self, queue: str, item: str | bytes, tag: str | None = None) -> None:
        """A non-message the fetch set aside, or an item that is not UTF-8 (in flight under ``tag``)."""
        raise NotImplementedError

    def _payload_limit(self) -> int:
        """The largest message (bytes) a worker accepts (0: no limit)."""
        raise NotImplementedError

    def _signing_keys(self) -> list[str]:
        """The keys a message must be signed with (none: signing is off)."""
        raise NotImplementedError

    def _invalid(self, queue: str, item: str, message: dict[str, Any], tag: str, problem: str) -> None:
        """A message in flight that is not a valid task message (the channel dead-letters it)."""
        raise NotImplementedError

    def _deferred(self, queue: str, message: dict[str, Any], tag: str) -> bool:
        """True if a message due later went to the delayed store instead."""
        raise NotImplementedError

    def _forged(self, queue: str, item: str, message: dict[str, Any], tag: str) -> None:
        """A message in flight whose signature does not verify (dead-lettered by the channel)."""
        raise NotImplementedError
