"""Every Celery setting, classified: what a team's Celery configuration (``app.conf.update``,
``config_from_object``) does under taskplane. ``tests/celery/test_settings_table.py`` checks that the
installed Celery has no setting missing here; docs/migration.md shows the same table (a test compares them).

- ``honoured``: Celery applies the team's value (where taskplane has a default of its own, theirs wins).
- ``mapped``: taskplane applies it its own way (what it becomes is said).
- ``taskplane``: taskplane sets it for a guarantee; the same value is accepted, another is refused.
- ``refused``: it has no use here; the one-line error says what to write instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Handling = Literal["honoured", "mapped", "taskplane", "refused"]


@dataclass(frozen=True)
class Rule:
    """How taskplane handles one Celery setting, and why (or what to write instead)."""

    handling: Handling
    note: str


def _h(note: str = "") -> Rule:
    return Rule("honoured", note)


def _m(note: str) -> Rule:
    return Rule("mapped", note)


def _t(note: str) -> Rule:
    return Rule("taskplane", note)


def _r(note: str) -> Rule:
    return Rule("refused", note)


_URL = "give the Redis URL as TASKPLANE_REDIS_URL (or Taskplane(redis_url=...)): one URL for broker and results"
_AMQP = "remove it: it applies to AMQP brokers only"
_BACKEND = "remove it: results live in taskplane's Redis, with the task records"
_JSON = "taskplane's messages and results are JSON only (pickle would let a message run code)"

#: Families of result-backend settings of other stores: refused as a whole.
REFUSED_PREFIXES: dict[str, str] = {
    "arangodb_": _BACKEND,
    "azureblockblob_": _BACKEND,
    "cache_": _BACKEND,
    "cassandra_": _BACKEND,
    "cosmosdbsql_": _BACKEND,
    "couchbase_": _BACKEND,
    "database_": _BACKEND,
    "elasticsearch_": _BACKEND,
    "gcs_": _BACKEND,
    "mongodb_": _BACKEND,
    "s3_": _BACKEND,
    "security_": "remove it: sign messages with TASKPLANE_SIGNING_KEY (HMAC; docs/operations.md)",
}

SETTINGS: dict[str, Rule] = {
    "accept_content": _t(_JSON),
    "beat_cron_starting_deadline": _r("remove it: a missed slot fires once late or is skipped: missed= per schedule"),
    "beat_enable_remote_control": _r("remove it: pause, resume and run schedules with taskplane schedules"),
    "beat_max_loop_interval": _h("how long celery beat sleeps at most between ticks of taskplane's scheduler"),
    "beat_remote_control_max_tick_age": _r("remove it: pause, resume and run schedules with taskplane schedules"),
    "beat_schedule": _m("each entry becomes a schedule of taskplane's HA scheduler (crontab, seconds, timedelta)"),
    "beat_schedule_filename": _r("remove it: the schedules' state lives in Redis"),
    "beat_scheduler": _t("celery beat runs taskplane's HA scheduler (one leader, a fenced lease)"),
    "beat_sync_every": _r("remove it: the schedules' state is written to Redis as each slot fires"),
    "broker_channel_error_retry": _h(),
    "broker_connection_max_retries": _h(),
    "broker_connection_retry": _h(),
    "broker_connection_retry_on_startup": _h(),
    "broker_connection_timeout": _h(),
    "broker_failover_strategy": _r("remove it: taskplane connects to one Redis URL"),
    "broker_heartbeat": _r(_AMQP),
    "broker_heartbeat_checkrate": _r(_AMQP),
    "broker_host": _r(_URL),
    "broker_login_method": _r(_AMQP),
    "broker_native_delayed_delivery_queue_type": _r(_AMQP),
    "broker_password": _r(_URL),
    "broker_pool_acquire_timeout": _h(),
    "broker_pool_limit": _h(),
    "broker_port": _r(_URL),
    "broker_read_url": _r(_URL),
    "broker_transport": _t("taskplane's kombu transport (lossless fetch, the delayed store, leases)"),
    "broker_transport_options": _m("merged with taskplane's; those taskplane owns are refused with their setting"),
    "broker_url": _t("the Redis URL taskplane uses; " + _URL),
    "broker_use_ssl": _r("give TLS in the rediss:// URL (ssl_cert_reqs, ssl_ca_certs, ...)"),
    "broker_user": _r(_URL),
    "broker_vhost": _r(_URL),
    "broker_write_url": _r(_URL),
    "control_exchange": _m("named under the key prefix (two apps on one Redis do not answer each other)"),
    "control_queue_durable": _r(_AMQP),
    "control_queue_exclusive": _r(_AMQP),
    "control_queue_expires": _h(),
    "control_queue_ttl": _h(),
    "enable_utc": _t("taskplane keeps times in UTC; give timezone= for what you read"),
    "event_exchange": _m("named under the key prefix"),
    "event_queue_durable": _r(_AMQP),
    "event_queue_exclusive": _r(_AMQP),
    "event_queue_expires": _h(),
    "event_queue_prefix": _h(),
    "event_queue_ttl": _h(),
    "event_serializer": _t(_JSON),
    "imports": _h("imported by taskplane's CLI as by celery worker"),
    "include": _h("imported by taskplane's CLI as by celery worker"),
    "redis_backend_use_ssl": _r("give TLS in the rediss:// URL (ssl_cert_reqs, ssl_ca_certs, ...)"),
    "redis_db": _r(_URL),
    "redis_host": _r(_URL),
    "redis_max_connections": _h(),
    "redis_password": _r(_URL),
    "redis_port": _r(_URL),
    "redis_retry_on_timeout": _h(),
    "redis_socket_connect_timeout": _h(),
    "redis_socket_keepalive": _h(),
    "redis_socket_timeout": _h(),
    "redis_username": _r(_URL),
    "result_accept_content": _t(_JSON),
    "result_backend": _t("taskplane's Redis result backend on the same URL; " + _URL),
    "result_backend_always_retry": _h(),
    "result_backend_base_sleep_between_retries_ms": _h(),
    "result_backend_max_retries": _h(),
    "result_backend_max_sleep_between_retries_ms": _h(),
    "result_backend_transport_options": _m("merged with taskplane's (the key prefix stays taskplane's)"),
    "result_cache_max": _h(),
    "result_chord_expires": _h(),
    "result_chord_join_timeout": _h(),
    "result_chord_retry_interval": _h(),
    "result_compression": _r("remove it: results are stored as JSON, uncompressed"),
    "result_exchange": _r(_AMQP),
    "result_exchange_type": _r(_AMQP),
    "result_expires": _h("Celery's result meta; the task record keeps TASKPLANE_RECORD_RETENTION"),
    "result_extended": _h(),
    "result_failure_expires": _h(),
    "result_persistent": _r(_AMQP),
    "result_serializer": _t(_JSON),
    "task_acks_late": _t("a task is acknowledged after it ran, so a crash returns it to its queue"),
    "task_acks_on_failure": _t("a failure is retried or dead-lettered, never acknowledged silently"),
    "task_acks_on_failure_or_timeout": _t("a failure is retried or dead-lettered, never acknowledged silently"),
    "task_acks_on_timeout": _t("a task its hard limit killed is dead-lettered (reason time_limit)"),
    "task_allow_error_cb_on_chord_header": _h(),
    "task_always_eager": _h("calls run in the calling process; taskplane's enqueue() too"),
    "task_annotations": _r("declare options on the task: @tp.task(rate_limit=..., retry=Retry(...))"),
    "task_compression": _r("remove it: messages are JSON, uncompressed (TASKPLANE_MAX_PAYLOAD_BYTES bounds them)"),
    "task_create_missing_queue_exchange_type": _r(_AMQP),
    "task_create_missing_queue_type": _r(_AMQP),
    "task_create_missing_queues": _t("queues are declared by tier: Taskplane(queues={'reports': 'low'})"),
    "task_default_delivery_mode": _r("remove it: Redis keeps messages as its persistence does (AOF)"),
    "task_default_exchange": _t("taskplane routes by queue: give task_default_queue"),
    "task_default_exchange_type": _t("taskplane routes by queue: give task_default_queue"),
    "task_default_priority": _h(),
    "task_default_queue": _m("the queue of tasks with no queue and no route; declared at tier normal if new"),
    "task_default_queue_type": _r(_AMQP),
    "task_default_rate_limit": _r("give rate_limit= per task: taskplane's limits hold across every worker"),
    "task_default_routing_key": _t("taskplane routes by queue: give task_default_queue"),
    "task_eager_propagates": _h(),
    "task_ignore_result": _h(),
    "task_inherit_parent_priority": _h(),
    "task_protocol": _t("Celery's task message protocol 2"),
    "task_publish_retry": _h(),
    "task_publish_retry_policy": _h(),
    "task_queue_max_priority": _r(_AMQP),
    "task_queues": _m("each queue becomes a taskplane queue (tier normal unless declared with another)"),
    "task_reject_on_worker_lost": _t("a delivery whose process died runs again, up to TASKPLANE_MAX_DELIVERIES"),
    "task_remote_tracebacks": _h(),
    "task_repr_maxlevels": _h(),
    "task_retry_on_worker_lost": _r("remove it: a delivery whose process died runs again, up to the poison cap"),
    "task_routes": _m("routes tasks to taskplane queues as Celery's router does (dicts, lists, functions)"),
    "task_send_sent_event": _h(),
    "task_serializer": _t(_JSON),
    "task_soft_time_limit": _h("the default soft limit (as TASKPLANE_SOFT_TIME_LIMIT)"),
    "task_store_eager_result": _h(),
    "task_store_errors_even_if_ignored": _r("remove it: the task record keeps every error"),
    "task_time_limit": _h("the default hard limit (as TASKPLANE_TIME_LIMIT)"),
    "task_track_started": _r("remove it: the task record says started (tp.handle(id).state, GET /tasks/{id})"),
    "timezone": _h("also the time zone of beat_schedule's crontab entries"),
    "worker_agent": _h(),
    "worker_autoscaler": _h(),
    "worker_cancel_long_running_tasks_on_connection_loss": _t("leases keep a task that runs through a reconnect"),
    "worker_concurrency": _m("taskplane worker's default -c (a profile's or -c given win)"),
    "worker_consumer": _t("taskplane's consumer (the dead-letter path for bad messages)"),
    "worker_deduplicate_successful_tasks": _r("remove it: a task that succeeded is never run again (its record)"),
    "worker_detect_quorum_queues": _r(_AMQP),
    "worker_direct": _r("remove it: taskplane has no per-worker queues"),
    "worker_disable_prefetch": _r("remove it: a worker takes one message per free process (TASKPLANE_LOOKAHEAD_MS)"),
    "worker_disable_rate_limits": _r("remove rate_limit from the tasks: taskplane's limits hold across workers"),
    "worker_enable_prefetch_count_reduction": _h(),
    "worker_enable_remote_control": _h(),
    "worker_enable_soft_shutdown_on_idle": _r("remove it: SIGTERM drains within TASKPLANE_SHUTDOWN_TIMEOUT"),
    "worker_eta_task_limit": _r("remove it: tasks with an ETA wait in Redis's delayed set, never in a worker"),
    "worker_hijack_root_logger": _h(),
    "worker_log_color": _h(),
    "worker_log_datefmt": _h(),
    "worker_log_format": _h(),
    "worker_lost_wait": _h(),
    "worker_max_memory_per_child": _m("taskplane worker's default (as TASKPLANE_MAX_MEMORY_PER_CHILD, in KiB)"),
    "worker_max_tasks_per_child": _m("taskplane worker's default (a profile's wins)"),
    "worker_pool": _t("the prefork pool that replaces an exited process at once"),
    "worker_pool_putlocks": _h(),
    "worker_pool_restarts": _h(),
    "worker_pool_start_method": _t("pool processes are forked"),
    "worker_prefetch_multiplier": _m("taskplane worker's default prefetch (a profile's wins)"),
    "worker_proc_alive_timeout": _h(),
    "worker_redirect_stdouts": _h(),
    "worker_redirect_stdouts_level": _h(),
    "worker_send_task_events": _h(),
    "worker_soft_shutdown_timeout": _r("remove it: SIGTERM drains within TASKPLANE_SHUTDOWN_TIMEOUT"),
    "worker_state_db": _r("remove it: cancellations (revokes) are stored in Redis"),
    "worker_task_log_datefmt": _h(),
    "worker_task_log_format": _h(),
    "worker_timer": _h(),
    "worker_timer_precision": _h(),
}


def rule_for(setting: str) -> Rule | None:
    """How taskplane handles ``setting`` (None: not a Celery setting taskplane knows)."""
    rule = SETTINGS.get(setting)
    if rule is not None:
        return rule
    for prefix, note in REFUSED_PREFIXES.items():
        if setting.startswith(prefix):
            return Rule("refused", note)
    return None
