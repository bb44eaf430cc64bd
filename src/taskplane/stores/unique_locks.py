"""``unique_for``: while a task with the same name and arguments is queued or running, reuse its id."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from taskplane.redis.batch import Batch
from taskplane.redis.storage import Storage


def unique_digest(name: str, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any], key: str | None = None) -> str:
    """A stable digest of the task name and its arguments (or of an explicit key)."""
    material = key if key is not None else json.dumps([list(args), kwargs], sort_keys=True, default=repr)
    return hashlib.sha256(f"{name}\x00{material}".encode()).hexdigest()[:32]


class UniqueLocks:
    """One lock per digest, owned by a task id, released by its owner or by expiry."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def release(self, queue: str, digest: str, task_id: str, batch: Batch | None = None) -> bool:
        """Release the lock of a task published to ``queue`` if ``task_id`` owns it (True if it did). With
        ``batch`` the release is only queued there, to go out with the rest of the batch (False then)."""
        key = self._storage.keys.unique(queue, digest)
        if batch is not None:
            batch.script("unique_release", [key], [task_id])
            return False
        return bool(self._storage.scripts.run("unique_release", keys=[key], args=[task_id]))
