"""Celery's Redis result backend, without a SUBSCRIBE to the result channel at every publish, and with
the SUCCESS meta written in the worker's final round trip (:mod:`taskplane.celery.results`)."""

from __future__ import annotations

import logging
from typing import Any

from celery import states
from celery.backends.redis import RedisBackend
from celery.exceptions import TaskRevokedError
from kombu.utils.encoding import bytes_to_str
from redis.cluster import RedisCluster

from taskplane.compat import result_meta
from taskplane.core.clock import now_ms
from taskplane.core.cluster_url import parse_cluster_url
from taskplane.core.protocol import TaskState, TransportOption
from taskplane.redis.client import CONNECTION_ERRORS
from taskplane.redis.cluster_url import connect_cluster

log = logging.getLogger("taskplane.worker")
#: What a result write raises when Redis is gone (a broken pipe surfaces as a plain OSError).
RESULT_STORE_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, OSError)
#: Set on a Celery request whose result meta went out with the final record.
STORED = "taskplane_result_stored"


class ResultBackend(RedisBackend):
    """Celery subscribes to every task's result channel when it publishes it, so that a later
    ``AsyncResult.get()`` cannot miss the result: two commands per enqueue, and an enqueue that blocks
    on reconnecting to the result store when Redis is down. Whoever waits subscribes when it starts
    waiting instead (``get()`` reads the stored result right after subscribing, so nothing is missed)."""

    def _create_client(self, **params: Any) -> Any:
        """Celery's client, or on a cluster (its URL in ``result_backend_transport_options``) a cluster
        client with the same timeouts: each result key goes to its slot's node."""
        backend: Any = self  # Celery's app attribute of a backend is not in its type stubs
        url = (backend.app.conf.get("result_backend_transport_options") or {}).get(TransportOption.CLUSTER.value)
        cluster = parse_cluster_url(url) if url else None
        if cluster is None:
            celerys: Any = super()
            return celerys._create_client(**params)
        timeouts = ("socket_timeout", "socket_connect_timeout", "socket_keepalive", "health_check_interval")
        return connect_cluster(cluster, **{name: params[name] for name in timeouts if name in params})

    def _set(self, key: str, value: Any, *expires: int | None) -> None:
        """Celery's (the value with its expiry, and a PUBLISH of it for whoever waits), whose pipeline carries
        the PUBLISH; on a cluster two commands (redis-py's cluster pipeline refuses PUBLISH). Celery 5.7 passes an
        expiry (``expires``); before, it reads its own."""
        if not isinstance(self.client, RedisCluster):
            celerys: Any = super()
            celerys._set(key, value, *expires)
            return
        backend: Any = self  # Celery's expires attribute is not in its type stubs
        seconds = expires[0] if expires and expires[0] is not None else backend.expires
        self.client.set(key, value, ex=seconds or None)
        self._publish(key, value)

    def _publish(self, key: str, value: Any) -> None:
        """PUBLISH a result on a cluster through the node of its key (a cluster forwards it to every node): not
        through redis-py's default node, whose freezing would hold every task's end, not a third of them."""
        cluster = self.client
        cluster.get_redis_connection(cluster.get_node_from_key(key)).publish(key, value)

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Nothing: the result channel is subscribed to when someone waits."""

    def queue_result(self, pipe: Any, task_id: str, result: Any, request: Any, state: str = states.SUCCESS) -> None:
        """Queue the meta of ``task_id`` (SUCCESS, or REVOKED with the error as result) on ``pipe`` (a SET
        with Celery's expiry and a PUBLISH, as Celery's own write sends, with the same content), and mark
        ``request`` so that :meth:`mark_as_done` does not write it again. Celery's GET of the current meta
        before each write is skipped: the start script already refuses to run a task that succeeded."""
        backend: Any = self  # Celery's private helpers are not in its type stubs
        result = self.encode_result(result, state)  # an exception becomes Celery's {exc_type, exc_message, ...}
        meta = result_meta(backend, result, state, request)
        meta["task_id"] = bytes_to_str(task_id)
        key = self.get_key_for_task(task_id)
        value = self.encode(meta)
        pipe.set(key, value, ex=backend.expires or None)
        if isinstance(self.client, RedisCluster):  # no PUBLISH in redis-py's cluster pipeline; a waiter reads either
            self._publish(key, value)
        else:
            pipe.publish(key, value)
        if request is not None:
            setattr(request, STORED, True)

    def revoke_many(self, task_ids: list[str], reason: str) -> None:
        """Write the REVOKED meta of many tasks that will never run (a purge) in one round trip, so that
        ``AsyncResult(id).state`` says REVOKED and a waiting ``get()`` ends."""
        if not task_ids:
            return
        pipe = self.client.pipeline(transaction=False)
        for task_id in task_ids:
            self.queue_result(pipe, task_id, TaskRevokedError(reason), None, states.REVOKED)
        pipe.execute()

    def chord_error_from_stack(self, callback: Any, exc: Exception | None = None) -> Any:
        """Celery's, and a record for the callback of a chord whose member failed (it never runs, so nothing
        else writes one): dead, reason ``chord_failed``, with the error. Celery's state says FAILURE."""
        info = super().chord_error_from_stack(callback, exc)
        backend: Any = self  # Celery's app attribute of a backend is not in its type stubs
        app = backend.app
        for signature in getattr(callback, "tasks", None) or [callback]:  # a group callback: each of its tasks
            task_id = signature.id or signature.options.get("task_id")
            if task_id is None or not hasattr(app, "stores"):
                continue
            error = exc if exc is not None else getattr(info, "exception", None)
            try:
                app.stores.records.write(
                    task_id,
                    signature.task,
                    signature.options.get("queue") or app.routing.queue_for(signature.task),
                    TaskState.DEAD,
                    reason="chord_failed",
                    finished_ms=now_ms(),
                    error_type=type(error).__name__ if error is not None else "ChordError",
                    error_message=str(error)[:2000] if error is not None else "a member of its chord failed",
                )
            except RESULT_STORE_ERRORS as failure:
                log.warning("could not record the failed chord callback %s: %s", task_id, failure)
        return info

    def mark_as_done(
        self, task_id: str, result: Any, request: Any = None, store_result: bool = True, state: str = states.SUCCESS
    ) -> None:
        """Celery's, minus the write when the final round trip already carried the meta."""
        if request is not None and getattr(request, STORED, False):
            store_result = False
        super().mark_as_done(task_id, result, request, store_result, state)

    def store_result(self, task_id: str, result: Any, state: str, *args: Any, **kwargs: Any) -> Any:
        """Celery's store (retried through a short outage by ``result_backend_always_retry``); if Redis stays
        unreachable, the failure is logged instead of raised: raised, Celery would record a task that ran
        as failed "outside its body" and acknowledge it. The taskplane record holds the outcome."""
        try:
            return super().store_result(task_id, result, state, *args, **kwargs)
        except RESULT_STORE_ERRORS as exc:
            log.warning("could not store the Celery result of %s (%s): %s", task_id, state, exc)
            return result
