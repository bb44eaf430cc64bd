"""Operations of ``publish.lua`` built outside a :class:`~taskplane.redis.scripts.Batch` (delayed messages,
the queue's bell), and the collecting of whole ``publish.lua`` calls by a batch enqueue."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

import redis

from taskplane.redis.batch import Batch
from taskplane.redis.keys import BELL_CAP

#: The value a fence leaves in a publish's own claim (:func:`fence_claims`).
FENCE = "fenced"


def queue_items(pipe: Any, target: str, bell: str, items: Sequence[Any], head: bool = True) -> None:
    """Queue on ``pipe`` (a MULTI/EXEC in the queue's slot, outside ``publish.lua``) ``items`` into ``target``,
    a list of a queue, at its head (the newest end; ``head=False``: next to be taken), and ring the queue's
    ``bell`` once per item, up to its cap."""
    (pipe.lpush if head else pipe.rpush)(target, *items)
    pipe.lpush(bell, *[1] * min(len(items), BELL_CAP)).ltrim(bell, 0, BELL_CAP - 1)


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


def new_nonce() -> str:
    """A publish's own claim value, unique to it."""
    return secrets.token_hex(8)


def fence_claims(client: redis.Redis, claims: list[tuple[str, int]]) -> list[bool]:
    """After publishes holding these own claims (key, time to live in ms) got no reply in time: take each
    claim that is not there (SET NX, one round trip on ``client``). True for a claim taken: its publish
    did not go out, and never will (a late send finds its claim taken and writes nothing: ``publish.lua``
    sets it with everything else, or nothing); False: the publish went out. Raises ``client``'s errors
    when the server does not answer."""
    pipe = client.pipeline(transaction=False)
    for key, ttl_ms in claims:
        pipe.set(key, FENCE, nx=True, px=ttl_ms)
    return [bool(took) for took in pipe.execute()]


def resolve_publishes(client: redis.Redis, calls: list[CollectedPublish]) -> list[CollectedPublish]:
    """After collected ``publish.lua`` calls were sent and no reply came in time: fence each call's own
    claim (:func:`fence_claims`); returns the calls that did not go out, each with a new own claim, to be
    sent again.

    Raises:
        ValueError: a call carries no own claim (its first claim, ``...sent:<value>``), so it cannot be
            resolved.
    """
    for keys, argv, _ in calls:
        if not (argv[1:3] == ["k", 2] and str(keys[0]).endswith(f"sent:{argv[3]}")):
            raise ValueError("a publish without its own claim cannot be resolved")
    fenced = fence_claims(client, [(keys[0], int(argv[4])) for keys, argv, _ in calls])
    again: list[CollectedPublish] = []
    for (keys, argv, on_reply), took in zip(calls, fenced, strict=True):
        if took:
            nonce = new_nonce()
            again.append(([keys[0][: -len(argv[3])] + nonce, *keys[1:]], [*argv[:3], nonce, *argv[4:]], on_reply))
    return again
