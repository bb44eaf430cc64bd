"""Celery's remote control with ``revoke`` also a taskplane cancellation: persistent (it survives worker
restarts, unlike Celery's in-memory revoked set), and the record says ``cancelled``."""

from __future__ import annotations

from typing import Any

from celery.app.control import Control

from taskplane.core.errors import NotFoundError


class TaskplaneControl(Control):
    """``app.control`` of taskplane's Celery app (``AsyncResult.revoke()`` calls it)."""

    def revoke(
        self, task_id: Any, destination: Any = None, terminate: bool = False, signal: Any = None, **kwargs: Any
    ) -> Any:
        """Cancel the task(s) in Redis: a queued or delayed one never runs, also after worker restarts; a
        running one sees ``is_cancelled()``, and with ``terminate=True`` its process is killed. Then Celery's
        own broadcast, as plain Celery sends it: the replies of ``reply=True`` come back, and the workers that
        run now also hold it in memory."""
        app: Any = self.app
        for one in [task_id] if isinstance(task_id, str) else list(task_id):
            try:
                app.task_lookup.cancel(one, terminate_after=0.0 if terminate else None)
            except NotFoundError:
                app.task_lookup.cancel_unknown(one)
        return super().revoke(task_id, destination=destination, terminate=terminate, signal=signal, **kwargs)
