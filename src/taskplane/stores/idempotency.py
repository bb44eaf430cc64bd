"""Idempotency keys: a caller's key maps to the one task it created, for as long as records are kept."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from taskplane.core.errors import IdempotencyConflictError, InvalidRequestError
from taskplane.redis.keys import Keys

MAX_KEY_LENGTH = 255


def call_fingerprint(name: str, args: Any, kwargs: Any) -> str:
    """A short digest of one call (task name and arguments), to tell a replay from a different call."""
    text = json.dumps([name, list(args), kwargs], sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class IdempotencyClaim:
    """An idempotency key to bind in the same atomic step as the message it guards."""

    key: str  # the caller's key
    digest: str  # of the caller's key
    value: str  # "<task id> <call fingerprint>"
    ttl_ms: int
    redis_key: str = ""  # set by in_queue

    def in_queue(self, keys: Keys, queue: str) -> IdempotencyClaim:
        """This claim for a publish to ``queue``: its key is under the queue's hash tag (one key per queue:
        the same key used for another queue binds another task)."""
        return replace(self, redis_key=keys.idempotency(queue, self.digest))

    def existing(self, value: str) -> str:
        """The id of the task ``value`` (what held the key) names.

        Raises:
            IdempotencyConflictError: the key was used for a call with another task or other arguments.
        """
        existing_id, _, existing_fingerprint = value.partition(" ")
        if existing_fingerprint != self.value.partition(" ")[2]:
            raise IdempotencyConflictError(
                f"idempotency key {self.key[:60]!r} was already used for a different call (task {existing_id})"
            )
        return existing_id


class IdempotencyKeys:
    """Binds a caller's key to the task it created; a replay of the same call finds that task."""

    def __init__(self, ttl_seconds: int) -> None:
        self._ttl_ms = ttl_seconds * 1000

    @staticmethod
    def _digest(idempotency_key: str) -> str:
        if not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
            raise InvalidRequestError(f"an idempotency key must be 1..{MAX_KEY_LENGTH} characters")
        return hashlib.sha256(idempotency_key.encode()).hexdigest()

    def claim_for(self, idempotency_key: str, task_id: str, fingerprint: str) -> IdempotencyClaim:
        """What to claim for this key with the publish of ``task_id`` (:meth:`IdempotencyClaim.in_queue` once
        its queue is known).

        Raises:
            InvalidRequestError: an empty or overlong key.
        """
        digest = self._digest(idempotency_key)
        return IdempotencyClaim(idempotency_key, digest, f"{task_id} {fingerprint}", self._ttl_ms)
