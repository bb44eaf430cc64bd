"""Worker-side request hooks (main process): a task killed by its hard time limit goes through the chain."""

from __future__ import annotations

from typing import Any

from celery.worker import state
from celery.worker.request import Request

from taskplane.middleware.base import Run


class TaskplaneRequest(Request):
    """Celery's Request, plus the middleware's ``on_time_limit`` hooks when the hard limit kills a task."""

    def on_timeout(self, soft: bool, timeout: float) -> None:
        """Tell the middleware when the hard limit killed the task (not during a cold shutdown)."""
        if not soft and not state.should_terminate:
            self._time_limit_exceeded(timeout)
        super().on_timeout(soft, timeout)

    def _time_limit_exceeded(self, timeout: float) -> None:
        task: Any = self.task
        app = task.app
        headers = dict(self.request_dict or {})  # the message headers Celery parsed
        run = Run(
            task=task,
            task_id=self.id,
            name=self.name,
            queue=(self.delivery_info or {}).get("routing_key") or app.routing.queue_for(self.name),
            attempt=int(headers.get("retries") or 0),
            args=tuple(self.args or ()),
            kwargs=dict(self.kwargs or {}),
            headers=headers,
            worker=self.hostname or "",
            new_batch=app.stores.storage.batch,
        )
        app.chain.time_limit(run, timeout)
