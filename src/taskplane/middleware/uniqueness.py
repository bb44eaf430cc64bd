"""``unique_for``: while a task with the same name and arguments is queued or running, reuse its id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskplane.core.errors import ConfigurationError
from taskplane.core.policies import seconds
from taskplane.core.protocol import Header
from taskplane.middleware.base import Middleware, Publish, Run
from taskplane.stores.bundle import Stores
from taskplane.stores.unique_locks import unique_digest


class Uniqueness(Middleware):
    """Takes a lock per (task, arguments) with the publish; released when the task succeeds, is cancelled, or
    dies (the failure path), or when the lock's ``unique_for`` seconds run out."""

    options = ("unique_for", "unique_key")

    def __init__(self, stores: Stores) -> None:
        self._stores = stores

    def task_options(self, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """``taskplane_unique_for`` (seconds) and ``taskplane_unique_key`` (a callable of the arguments).

        Raises:
            ConfigurationError: ``unique_for`` is not a positive duration, ``unique_key`` not a function (or
                given without ``unique_for``).
        """
        unique_for = options.get("unique_for")
        if unique_for is not None:
            unique_for = seconds("unique_for", unique_for)
        unique_key = options.get("unique_key")
        if unique_key is not None and not callable(unique_key):
            raise ConfigurationError(f"unique_key={unique_key!r}: give a function of the task's arguments")
        if unique_key is not None and unique_for is None:
            raise ConfigurationError("unique_key without unique_for: give unique_for (seconds) too")
        return {"taskplane_unique_for": unique_for, "taskplane_unique_key": unique_key}

    def before_publish(self, publish: Publish) -> None:
        """Take the lock, or name the task that holds it (then nothing is published)."""
        digest = self._digest(publish)
        if digest is None:
            return
        unique_for = float(getattr(publish.task, "taskplane_unique_for", 0) or 0)
        publish.headers[Header.UNIQUE.value] = digest
        # Taken by the publish script, with the message, in the same atomic step (a held lock publishes
        # nothing), in a batch too: a lock never outlives a publish that did not happen.
        publish.batch.claim(
            self._stores.storage.keys.unique(publish.queue, digest), publish.task_id, int(unique_for * 1000)
        )

    def publish_failed(self, publish: Publish) -> None:
        """Release the lock taken for a message that was not sent."""
        digest = publish.headers.get(Header.UNIQUE)
        if digest and publish.fresh:
            self._stores.unique_locks.release(publish.queue, str(digest), publish.task_id)

    def after_run(self, run: Run) -> None:
        """The task succeeded or was cancelled: the next equal one may be queued."""
        digest = run.headers.get(Header.UNIQUE)
        if digest:
            self._stores.unique_locks.release(run.queue, str(digest), run.task_id, batch=run.batch)

    @staticmethod
    def _digest(publish: Publish) -> str | None:
        if not publish.fresh or not getattr(publish.task, "taskplane_unique_for", None):
            return None
        key_function = getattr(publish.task, "taskplane_unique_key", None)
        key = None if key_function is None else str(key_function(*publish.args, **publish.kwargs))
        return unique_digest(publish.name, publish.args, publish.kwargs, key)
