"""Operations of ``publish.lua`` built outside a :class:`~taskplane.redis.scripts.Batch` (delayed messages,
the queue's bell), and the collecting of whole ``publish.lua`` calls by a batch enqueue."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from taskplane.redis.scripts import Batch


def publish_delayed(keys: list[str], argv: list[Any], delayed_key: str, delay: float, *payloads: str) -> None:
    """Append delayed messages (due ``delay`` seconds from now by the server's clock) to ``publish.lua``'s
    ``keys`` and ``argv``."""
    keys.append(delayed_key)
    argv.extend(("d", len(payloads) + 1, repr(delay), *payloads))
    argv[0] += 1


#: One collected ``publish.lua`` call: its keys, its arguments, and what gets its reply (a claim found
#: taken: see ``publish.lua``), if anything.
CollectedPublish = tuple[list[str], list[Any], Callable[[Any], None] | None]

#: While set, a publisher adds each message's ``publish.lua`` call here instead of sending it: a batch
#: enqueue sends a chunk of them in one pipeline (:func:`send_publishes`).
collected_publishes: ContextVar[list[CollectedPublish] | None] = ContextVar(
    "taskplane_collected_publishes", default=None
)


def send_publishes(batch: Batch, calls: list[CollectedPublish]) -> None:
    """Send collected ``publish.lua`` calls in one round trip (each call atomic by itself, its claims
    included), then hand each call's reply to its callback.

    Raises:
        redis.RedisError: a call failed (those before it in the batch were applied).
    """
    for keys, argv, on_reply in calls:
        batch.script("publish", keys, argv, on_reply)
    batch.execute()


def publish_bell(keys: list[str], argv: list[Any], bell_key: str, cap: int) -> None:
    """Append the ringing of a bell list (trimmed to ``cap`` only when longer) to ``publish.lua``'s call."""
    keys.append(bell_key)
    argv.extend(("b", 1, cap))
    argv[0] += 1
