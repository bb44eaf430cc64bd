"""Idempotency keys: a caller's key maps to the one task it created, for as long as records are kept."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from taskplane.core.errors import IdempotencyConflictError, InvalidRequestError
from taskplane.redis.storage import Storage
from taskplane.stores.unique_locks import claim_key

MAX_KEY_LENGTH = 255


def call_fingerprint(name: str, args: Any, kwargs: Any) -> str:
    """A short digest of one call (task name and arguments), to tell a replay from a different call."""
    text = json.dumps([name, list(args), kwargs], sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class IdempotencyKeys:
    """Binds a caller's key to the task it created; a replay of the same call finds that task."""

    def __init__(self, storage: Storage, ttl_seconds: int) -> None:
        self._storage = storage
        self._ttl_ms = ttl_seconds * 1000

    def _key(self, idempotency_key: str) -> str:
        if not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
            raise InvalidRequestError(f"an idempotency key must be 1..{MAX_KEY_LENGTH} characters")
        return self._storage.keys.idempotency(hashlib.sha256(idempotency_key.encode()).hexdigest())

    def claim(self, idempotency_key: str, task_id: str, fingerprint: str) -> str | None:
        """Bind the key to ``task_id``; returns None if it is now bound, else the id it was already bound to.

        Raises:
            InvalidRequestError: an empty or overlong key.
            IdempotencyConflictError: the key was used for a call with another task or other arguments.
        """
        existing = claim_key(self._storage.client, self._key(idempotency_key), f"{task_id} {fingerprint}", self._ttl_ms)
        if existing is None:
            return None
        existing_id, _, existing_fingerprint = existing.partition(" ")
        if existing_fingerprint != fingerprint:
            raise IdempotencyConflictError(
                f"idempotency key {idempotency_key[:60]!r} was already used for a different call (task {existing_id})"
            )
        return existing_id

    def release(self, idempotency_key: str, task_id: str, fingerprint: str) -> None:
        """Free the key if it is still bound to ``task_id`` (the enqueue it guarded did not happen)."""
        key = self._key(idempotency_key)
        self._storage.scripts.run("unique_release", keys=[key], args=[f"{task_id} {fingerprint}"])
