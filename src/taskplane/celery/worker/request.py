"""Worker-side request hooks (main process): dead-letter tasks killed by their hard time limit."""

from __future__ import annotations

from typing import Any

from celery.worker import state
from celery.worker.request import Request

from taskplane.stores.dead_letters import DeadLetter
from taskplane.stores.records import now_ms


class TaskplaneRequest(Request):
    """Celery's Request, plus dead-lettering on a hard time limit."""

    @property
    def request_dict(self) -> dict[str, Any]:
        """The message headers Celery parsed for this request."""
        return dict(getattr(self, "_request_dict", {}) or {})

    def on_timeout(self, soft: bool, timeout: float) -> None:
        """Dead-letter the task when its hard limit killed it (not during a cold shutdown)."""
        if not soft and not state.should_terminate:
            self._dead_letter_time_limit(timeout)
        super().on_timeout(soft, timeout)

    def _dead_letter_time_limit(self, timeout: float) -> None:
        task: Any = self.task
        tp = task.taskplane
        queue = (self.delivery_info or {}).get("routing_key") or tp.queue_for(self.name)
        attempt = int(self.request_dict.get("retries") or 0)
        stamp = now_ms()
        record = tp.records.get(self.id)
        first = int(record.fields.get("first_failure_ms", 0)) if record else 0
        letter = DeadLetter(
            id=self.id,
            name=self.name,
            queue=queue,
            reason="time_limit",
            args=list(self.args or []),
            kwargs=dict(self.kwargs or {}),
            exception_type="TimeLimitExceeded",
            exception_message=f"hard time limit ({timeout}s) exceeded",
            attempts=attempt + 1,
            first_failure_ms=first or stamp,
            last_failure_ms=stamp,
            worker=self.hostname or "",
        )
        tp.bury(letter, self.request_dict.get("x-taskplane-unique"))
        failed = tp.task_metrics.changes(self.hostname).count(
            "celery_task_failed_total", self.name, self.hostname or "", queue, "TimeLimitExceeded"
        )
        tp.task_metrics.write(failed.observe("celery_task_runtime", timeout, self.name, self.hostname or "", queue))
