"""The production defaults taskplane gives every Celery app, each with the reason it is chosen.

docs/concepts.md lists the same table for users.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from taskplane.celery.connection import CLUSTER_TRANSPORT_PATH, TRANSPORT_PATH
from taskplane.core.cluster_url import node_url, parse_cluster_url
from taskplane.core.protocol import TransportOption
from taskplane.core.settings import Settings
from taskplane.core.signing import parse_keys
from taskplane.core.topology import DEFAULT_QUEUE, Topology
from taskplane.redis.client import CONNECT_TIMEOUT, HEALTH_CHECK_INTERVAL, SOCKET_TIMEOUT, with_tls_verification
from taskplane.redis.keys import PRIORITY_STEPS

#: Celery's prefork pool, replacing an exited child process at once (:mod:`taskplane.celery.worker.pool`).
PREFORK_POOL = "taskplane.celery.worker.pool:TaskPool"


def celery_config(settings: Settings, topology: Topology, redis_url: str) -> dict[str, Any]:
    """Celery settings for one taskplane app. For a cluster URL, Celery and kombu are given one node's URL
    and the cluster URL rides in the transport options (kombu would read ``redis+cluster://`` as its
    ``redis`` transport); taskplane's cluster transport and result backend connect to the whole cluster."""
    cluster = parse_cluster_url(redis_url)
    cluster_options = {TransportOption.CLUSTER.value: redis_url} if cluster is not None else {}
    redis_url = node_url(cluster) if cluster is not None else with_tls_verification(redis_url)
    prefix = settings.key_prefix
    lease = settings.lease_timeout
    transport_options: dict[str, Any] = {
        # Worker takes queues in the order given (highest tier first), not round-robin.
        "queue_order_strategy": "priority",
        # priority=0..9 orders messages within a queue (0 first, as on Celery's Redis transport).
        "priority_steps": list(PRIORITY_STEPS),
        # The prefix under kombu's name for it, for tools that read the lists (Flower); taskplane's channel
        # names its keys itself and keeps kombu's key-rewriting client out (Channel._get_client).
        "global_keyprefix": prefix,
        # In-flight deliveries are leases: live workers renew them, a dead worker's expire quickly.
        "visibility_timeout": lease,
        "unacked_restore_interval": max(1, int(lease / 6)),
        "unacked_restore_throttle": 1,
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        TransportOption.PREFIX.value: prefix,
        TransportOption.MAX_PAYLOAD.value: settings.max_payload_bytes,
        TransportOption.DEAD_LETTER_CAP.value: settings.dead_letter_cap,
        TransportOption.DEAD_LETTER_MAX_BYTES.value: settings.dead_letter_max_bytes,
        TransportOption.RECORD_RETENTION.value: settings.record_retention,
        TransportOption.SIGNING_KEYS.value: parse_keys(settings.signing_key),
        TransportOption.LOOKAHEAD_MS.value: settings.lookahead_ms,
        **cluster_options,
    }
    queues = [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in topology.names()]
    return {
        "broker_url": redis_url,
        "broker_transport": CLUSTER_TRANSPORT_PATH if cluster is not None else TRANSPORT_PATH,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": 10,
        # Celery's Redis backend minus the per-publish SUBSCRIBE (see taskplane.celery.backend).
        "result_backend": f"taskplane.celery.backend:ResultBackend+{redis_url}",
        "result_backend_transport_options": {
            # Celery's result keys (celery-task-meta-<id>...) under the app's prefix too
            "global_keyprefix": prefix,
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "socket_keepalive": True,
            "health_check_interval": HEALTH_CHECK_INTERVAL,
            **cluster_options,
        },
        "redis_socket_timeout": SOCKET_TIMEOUT,
        "redis_socket_connect_timeout": CONNECT_TIMEOUT,
        "redis_socket_keepalive": True,
        "redis_backend_health_check_interval": HEALTH_CHECK_INTERVAL,
        "result_expires": settings.result_expires,
        # A result write waits out a short Redis outage (about 10 s) instead of failing a task that ran.
        "result_backend_always_retry": True,
        "result_backend_max_retries": 10,
        "result_backend_base_sleep_between_retries_ms": 100,
        "result_backend_max_sleep_between_retries_ms": 2000,
        "result_extended": False,
        # JSON only: pickle would let a message run code in the worker.
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # A task is acknowledged after it ran, so a crash returns it to the queue...
        "task_acks_late": True,
        # ...also when the worker process running it dies.
        "task_reject_on_worker_lost": True,
        # One message at a time per process: tiers stay strict, nothing waits behind a long task.
        "worker_prefetch_multiplier": settings.prefetch_multiplier,
        # Recycle processes to bound leaks in user code...
        "worker_max_tasks_per_child": settings.max_tasks_per_child,
        # ...replacing a recycled process at once (Celery's prefork pool may take 5 s: see the module).
        "worker_pool": PREFORK_POOL,
        "worker_max_memory_per_child": settings.max_memory_per_child * 1024 or None,  # Celery counts KiB
        "task_soft_time_limit": settings.soft_time_limit,
        "task_time_limit": settings.time_limit,
        # No STARTED write to the result backend: the record says started (in the one round trip before the
        # task body); Celery's result meta is written once, with the outcome.
        "task_track_started": False,
        # No task-sent event per enqueue: it doubles the Redis work of every publish, and the record
        # written at enqueue already says "queued".
        "task_send_sent_event": False,
        # Celery task events (three PUBLISHes per task) only while a monitor listens: Flower turns them
        # on with the ``enable_events`` control command. taskplane's metrics do not depend on them.
        "worker_send_task_events": False,
        # Remote control (celery inspect, pidbox) and task events on exchanges named under the prefix: two
        # apps on one Redis do not answer each other's inspect, and their binding tables are under the prefix.
        "control_exchange": f"{prefix}celery",
        "event_exchange": f"{prefix}celeryev",
        # Remote-control replies expire instead of piling up in Redis.
        "control_queue_ttl": 300,
        "control_queue_expires": 60,
        "event_queue_ttl": 60,
        "event_queue_expires": 60,
        "task_queues": queues,
        "task_default_queue": DEFAULT_QUEUE,
        "task_default_exchange": DEFAULT_QUEUE,
        "task_default_routing_key": DEFAULT_QUEUE,
        "task_create_missing_queues": False,
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        # Our own lease and shutdown logic replaces these Celery behaviours.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_consumer": "taskplane.celery.worker.consumer:Consumer",
        # `celery beat` runs taskplane's HA scheduler (one leader, a fenced lease), never a second scheduler.
        "beat_scheduler": "taskplane.celery.beat:Scheduler",
        "worker_hijack_root_logger": False,
        "enable_utc": True,
        "timezone": "UTC",
    }
