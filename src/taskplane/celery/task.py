"""The Celery Task base every taskplane task uses: it only runs the app's middleware chain."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import celery

from taskplane.client.handle import TaskHandle
from taskplane.client.producer import Call
from taskplane.core.errors import ConfigurationError
from taskplane.core.ids import new_task_id
from taskplane.core.protocol import Header, PublishOption
from taskplane.middleware.base import Run, running
from taskplane.middleware.progress import progress_from_meta
from taskplane.observability.logging import TaskLogContext, enter_task, leave_task
from taskplane.redis.client import CONNECTION_ERRORS, unavailable
from taskplane.stores.metrics import this_host

if TYPE_CHECKING:
    from taskplane.celery.app import TaskplaneCelery


class TaskplaneTask(celery.Task):  # type: ignore[type-arg]
    """Runs a task function through the middleware chain. Set up by ``Taskplane.task``."""

    Request = "taskplane.celery.worker.request:TaskplaneRequest"

    @property
    def platform(self) -> TaskplaneCelery:
        """The taskplane Celery app this task belongs to."""
        app: Any = self.app
        return app  # type: ignore[no-any-return]

    # -- producing -------------------------------------------------------------------------------

    def enqueue(self, *args: Any, **kwargs: Any) -> TaskHandle:
        """Queue this task with these arguments; returns a handle with ``.id``."""
        return self.platform.producer.enqueue(self.name, args, kwargs)

    def enqueue_with(
        self,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
    ) -> TaskHandle:
        """Queue with options: another ``queue``, a ``countdown`` in seconds or an ``eta`` datetime."""
        return self.platform.producer.enqueue(self.name, args, kwargs or {}, queue=queue, countdown=countdown, eta=eta)

    def enqueue_many(
        self,
        items: Iterable[Sequence[Any] | Mapping[str, Any] | Call],
        *,
        queue: str | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
    ) -> list[TaskHandle]:
        """Queue this task once per item (positional arguments, a dict of keyword arguments, or a
        :class:`taskplane.Call` with both); returns the handles in order (see
        :meth:`taskplane.Taskplane.enqueue_many`)."""
        return self.platform.producer.enqueue_many(self.name, items, queue=queue, countdown=countdown, eta=eta)

    def apply_async(
        self,
        args: Any = None,
        kwargs: Any = None,
        task_id: str | None = None,
        producer: Any = None,
        link: Any = None,
        link_error: Any = None,
        shadow: Any = None,
        **options: Any,
    ) -> Any:
        """Celery's ``apply_async``; a re-publication of a running task (retry, rate wait) writes no new record."""
        republish = bool(options.pop(PublishOption.REPUBLISH.value, False) or options.get("retries"))
        options[PublishOption.RECORD.value] = not republish
        try:
            return super().apply_async(args, kwargs, task_id, producer, link, link_error, shadow, **options)
        except CONNECTION_ERRORS as exc:
            if republish:  # a worker's retry or rate wait: its delivery goes back to the queue instead
                raise unavailable(self.platform.stores.redis_url, exc) from None
            return self.platform.producer.run_inline(self, args, kwargs, task_id or new_task_id(), exc)

    # -- running -----------------------------------------------------------------------------------

    def update_state(
        self, task_id: str | None = None, state: str | None = None, meta: Any = None, **kwargs: Any
    ) -> None:
        """Celery's ``update_state``; a PROGRESS of the running task also updates its record's progress
        (``current``/``total``, or ``progress`` in percent; ``step``/``current_step``; ``message``; the rest
        kept as ``progress_meta``) and so the SSE stream, coalesced like :func:`taskplane.progress`."""
        run = running()
        report = run.report_progress if run is not None and task_id in (None, run.task_id) else None
        if state == "PROGRESS" and report is not None and isinstance(meta, Mapping):
            values = progress_from_meta(meta)
            total = values.get("progress_total")
            report(values, total is not None and values.get("progress_current") == total, meta=dict(meta))
            return
        super().update_state(task_id, state, meta, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if request.called_directly or request.is_eager:
            return self.run(*args, **kwargs)
        platform = self.platform
        run = Run(
            task=self,
            task_id=str(request.id),
            name=self.name,
            queue=(request.delivery_info or {}).get("routing_key") or platform.routing.queue_for(self.name),
            attempt=int(request.retries or 0),
            args=args,
            kwargs=kwargs,
            headers=dict(request.headers or {}),
            worker=str(platform.worker_name or request.hostname or this_host()),
            new_batch=platform.stores.storage.batch,
        )
        if request.eta is None and Header.ETA in run.headers:  # the transport kept it in the delayed set
            request.eta = run.headers[Header.ETA]
        token = enter_task(TaskLogContext(run.task_id, run.name, run.queue, run.attempt))
        try:
            return platform.chain.run(run, lambda: self.run(*args, **kwargs))
        finally:
            leave_task(token)


def task_base(base: Any, taskplane_task: type) -> type:
    """The task class of a task declared with Celery's ``base=``: the team's class over taskplane's (its own
    methods win; where they call ``super()`` or do not override, taskplane's task runs the middleware chain).

    Raises:
        ConfigurationError: ``base`` is not a Celery task class.
    """
    if not (isinstance(base, type) and issubclass(base, celery.Task)):
        raise ConfigurationError(f"base={base!r}: give a celery.Task subclass")
    if issubclass(base, taskplane_task):
        return base
    team: type = base
    return type(team.__name__, (team, taskplane_task), {"__module__": team.__module__})
