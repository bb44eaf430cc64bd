"""The Celery app class: a real ``celery.Celery`` whose ``send_task`` runs the publish hooks first."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import redis

from taskplane.celery.batch import batchable, publish_many
from taskplane.celery.channels import ChannelPool
from taskplane.celery.declaring import CeleryWayDeclarations
from taskplane.celery.direct import holding_channel, is_direct, publish_direct
from taskplane.celery.publishing import PendingWrites, pending_writes
from taskplane.celery.routing import Routing
from taskplane.client.producer import Producer
from taskplane.client.tasks import Tasks
from taskplane.core.clock import due_ms
from taskplane.core.errors import ConfigurationError
from taskplane.core.ids import new_task_id
from taskplane.core.protocol import Header, PublishOption
from taskplane.core.registry import TaskRegistry
from taskplane.core.settings import Settings
from taskplane.core.topology import Topology
from taskplane.middleware.base import Publish
from taskplane.middleware.chain import Chain, deferred_publications
from taskplane.middleware.failure import FailurePath
from taskplane.redis.client import CONNECTION_ERRORS, RESOLVE_TIMEOUT, connect
from taskplane.stores.bundle import Stores
from taskplane.stores.idempotency import IdempotencyClaim

#: Seconds an enqueue outside a worker retries a refused connection before RedisUnavailableError (docs/concepts.md).
PRODUCER_PUBLISH_PATIENCE = 1.0
#: Seconds a worker's publishing (a retry, a canvas step) waits for Redis to come back.
WORKER_PUBLISH_PATIENCE = 10.0


class TaskplaneCelery(CeleryWayDeclarations):
    """A real ``celery.Celery`` holding taskplane's collaborators (settings, topology, task registry,
    stores, middleware chain, producer) for the tasks, the worker and the transport to use. It is the
    current and default app once made (a bare ``AsyncResult(id)`` finds it, as Celery's apps are found);
    ``control.revoke`` is a taskplane cancellation."""

    control_cls = "taskplane.celery.control:TaskplaneControl"
    amqp_cls = "taskplane.celery.connection:TaskplaneAMQP"

    def __init__(
        self,
        main: str,
        *,
        settings: Settings,
        topology: Topology,
        registry: TaskRegistry,
        stores: Stores,
        chain: Chain,
        failure: FailurePath,
        fallback: str,
    ) -> None:
        super().__init__(main, task_cls="taskplane.celery.task:TaskplaneTask", set_as_current=True)
        self.set_default()  # also for threads other than this one (a web framework's worker threads)
        self.settings = settings
        self.topology = topology
        self.registry = registry
        self.stores = stores
        self.chain = chain
        #: "error" or "inline": what an enqueue does when Redis is unreachable.
        self.fallback = fallback
        #: The one failure path: how the consumer dead-letters a message it cannot run.
        self.failure = failure
        #: The node name of the worker running in this process (set by the worker's bootstep; pool
        #: processes inherit it). Celery's solo and threads pools give tasks the machine's host name.
        self.worker_name: str | None = None
        #: The exit code of the worker that ran in this process, once it stopped (Celery's ``worker_main``
        #: drops it: an unrecoverable error would otherwise end the process with 0).
        self.worker_exit_code: int | None = None
        #: Look-ups, results and cancellation of tasks by id.
        self.task_lookup = Tasks(stores, self)
        #: The queue of each call (declared queue, the team's task_routes, the default queue).
        self.routing = Routing(registry, topology)
        #: The Celery settings the team set, as read when the app configured.
        self.team_settings: dict[str, Any] = {}
        #: The first of the team's Celery settings taskplane refused (raised by every enqueue and at start).
        self.config_error: ConfigurationError | None = None
        #: Makes taskplane's HA scheduler of the app (``celery beat`` runs it: taskplane.celery.beat).
        self.make_scheduler: Callable[[], Any] | None = None
        #: Enqueueing with argument checks, idempotency keys and the inline fallback.
        self.producer = Producer(self, registry, topology, stores, fallback, self.task_lookup)
        #: Broker connections for taskplane's own publishing (made on first use).
        self.publish_channels = ChannelPool(self.connection_for_write, self._publish_patience)

    def _publish_patience(self) -> float:
        """How long a new publishing connection is retried: none with the inline fallback (it runs the task
        at once), a worker's (a retry, a canvas step) waits out a Redis restart, a producer's fails fast."""
        if self.fallback == "inline":
            return 0.0
        return WORKER_PUBLISH_PATIENCE if self.worker_name else PRODUCER_PUBLISH_PATIENCE

    def eager(self) -> bool:
        """True when calls run in the calling process: the team set Celery's ``task_always_eager`` (read when
        the app configured)."""
        app: Any = self  # Celery's configured flag is not in its type stubs
        if not app.configured:
            self.conf  # noqa: B018 - reading the settings configures the app
        return bool(self.team_settings.get("task_always_eager"))

    def batch_scope(self) -> AbstractContextManager[object]:
        """What a batch enqueue runs in: one pooled channel held for all its chunks."""
        return holding_channel(self)

    def publish(self, task: Any, args: list[Any], kwargs: dict[str, Any], options: dict[str, Any]) -> tuple[str, bool]:
        """Publish one checked call of ``task`` with ``send_task``'s options (``task_id``, ``countdown``,
        ``eta``, ``queue``...), as :meth:`send_task` does without building an AsyncResult; returns (the
        task id, whether an equal task existed and nothing was sent)."""
        publish = self._publish_call(task, args, kwargs, options)
        if publish.existing_id is not None:
            return publish.existing_id, True
        return publish.task_id, False

    def _publish_call(self, task: Any, args: list[Any], kwargs: dict[str, Any], options: dict[str, Any]) -> Publish:
        options = dict(options)
        countdown, eta, task_id = options.pop("countdown", None), options.pop("eta", None), options.pop("task_id", None)
        publish, _ = self._publish(task.name, args, kwargs, countdown, eta, task_id, task_type=task, **options)
        return publish

    def send_many(
        self, task: Any, calls: list[tuple[list[Any], dict[str, Any]]], options: dict[str, Any]
    ) -> list[Publish]:
        """Publish one message of ``task`` per checked call (args, kwargs) with the batch ``options``
        (``queue``, ``countdown``, ``eta``); returns the publishes in order. While a batch enqueue collects
        publishes, a publish whose ``unique_for`` lock is held learns it (``existing_id``) once its chunk went
        out. Batchable tasks take :func:`taskplane.celery.batch.publish_many`; the others one call each."""
        if self.config_error is not None:
            raise self.config_error
        if batchable(task):
            queue = self.routing.queue_for(task.name, options=options)
            return publish_many(self, task, calls, queue, options.get("countdown"), options.get("eta"))
        return [self._publish_call(task, args, kwargs, {**options, "task_id": new_task_id()}) for args, kwargs in calls]

    def send_task(  # type: ignore[override]
        self,
        name: str,
        args: Any = None,
        kwargs: Any = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        task_id: str | None = None,
        **options: Any,
    ) -> Any:
        """Run the publish hooks (record, metrics, uniqueness), then publish: the transport writes the
        record in the same MULTI/EXEC as the message, so there is never one without the other.

        When a uniqueness lock names an existing task, nothing is published and its AsyncResult (with
        ``taskplane_existing = True``) is returned.
        """
        publish, result = self._publish(name, args, kwargs, countdown, eta, task_id, **options)
        if result is None:
            result = (options.get("result_cls") or self.AsyncResult)(publish.existing_id or publish.task_id)
            result.ignored = bool(options.get("ignore_result", False))
        if publish.existing_id is not None:
            result.taskplane_existing = True
        return result

    def _publish(
        self,
        name: str,
        args: Any,
        kwargs: Any,
        countdown: float | None,
        eta: datetime | None,
        task_id: str | None,
        **options: Any,
    ) -> tuple[Publish, Any]:
        """:meth:`send_task`'s work: (the publish, whose ``existing_id`` names an equal task that existed
        when nothing was sent; the AsyncResult when Celery's own ``send_task`` published the message, else
        None)."""
        fresh = bool(options.pop(PublishOption.RECORD.value, True))
        idempotency: IdempotencyClaim | None = options.pop(PublishOption.IDEMPOTENCY.value, None)
        requeue_of = options.pop(PublishOption.REQUEUE_OF.value, None)
        if self.config_error is not None:
            raise self.config_error
        task_id = task_id or new_task_id()
        queue = options["queue"] = self.routing.queue_for(name, args, kwargs, options, options.get("task_type"))
        headers = dict(options.get("headers") or {})
        if requeue_of is not None:
            headers[Header.REQUEUE.value] = json.dumps(requeue_of)
        publish = Publish(
            name=name,
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
            task_id=task_id,
            queue=queue,
            eta_ms=due_ms(countdown, eta),
            headers=headers,
            fresh=fresh,
            requeued=requeue_of is not None,
            task=self.tasks.get(name),
            batch=self.stores.storage.batch(),
        )
        if idempotency is not None:
            idempotency = idempotency.in_queue(self.stores.storage.keys, queue)
            publish.batch.claim(idempotency.redis_key, idempotency.value, idempotency.ttl_ms)
        self.chain.publish(publish)
        if publish.existing_id is not None:
            return publish, None
        if publish.headers:
            options["headers"] = publish.headers
        pending = PendingWrites(publish.batch)

        def send() -> Any:
            if is_direct(queue, options):
                return publish_direct(self, name, args, kwargs, task_id, queue, countdown, eta, options)
            return super(TaskplaneCelery, self).send_task(
                name, args, kwargs, countdown=countdown, eta=eta, task_id=task_id, **options
            )

        try:
            result = self._send_resolved(pending, send)
        except BaseException:
            self.chain.publish_failed(publish)
            raise
        if not pending.sent and len(publish.batch.pipe):  # published by a transport that did not take them
            publish.batch.execute()
        deferred = deferred_publications.get()
        if deferred is not None:  # a batch enqueue: the publish goes out with its chunk, and is settled then
            deferred.append(functools.partial(self._settle, publish, pending, idempotency))
        else:
            self._settle(publish, pending, idempotency)
        return publish, result

    def _send_resolved(self, pending: PendingWrites, send: Callable[[], Any]) -> Any:
        """``send()`` with ``pending`` as this context's writes. A send that got no reply in time is resolved
        by its own claim (:meth:`_went_out`): gone out, it is done (returns None); fenced off, it is sent
        once more. Raises the timeout when the server does not answer the check, or the second send, in
        time: the outcome is unknown then."""
        token = pending_writes.set(pending)
        try:
            try:
                return send()
            except redis.TimeoutError:
                went_out = self._went_out(pending) if pending.guarded else None
                if went_out is None:
                    raise
            if went_out:
                pending.sent = True
                return None
            return send()
        finally:
            pending_writes.reset(token)

    def _went_out(self, pending: PendingWrites) -> bool | None:
        """:meth:`PendingWrites.went_out` on a connection of its own with a short timeout; None when the
        server does not answer it."""
        check = connect(self.stores.redis_url, timeout=RESOLVE_TIMEOUT)
        try:
            return pending.went_out(check)
        except CONNECTION_ERRORS:
            return None
        finally:
            check.close()

    def _settle(self, publish: Publish, pending: PendingWrites, idempotency: IdempotencyClaim | None) -> None:
        """After the publish went out: a claim it found held names the existing task (nothing was published);
        else the after-publish hooks run."""
        if pending.claimed is None:
            self.chain.published((publish,))
            return
        key, value = pending.claimed
        if idempotency is not None and key == idempotency.redis_key:
            publish.existing_id = idempotency.existing(value)  # the key's value names the task it is bound to
        else:
            publish.existing_id = value  # a uniqueness lock holds the id of its task
