"""Every name taskplane puts on the wire or in Redis for others to read: states, dead-letter reasons,
message headers, private publish options, transport options and metric names. One place, one spelling.
"""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    """The state of a task record."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"
    STARTED = "started"
    PROGRESS = "progress"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    CANCELLED = "cancelled"


#: States a task ends in (a requeue starts a dead or cancelled one again: taskplane.core.transitions).
TERMINAL_STATES = frozenset({TaskState.SUCCEEDED, TaskState.DEAD, TaskState.CANCELLED})
#: Other names users may give a state (Celery's words), and the state each means.
STATE_ALIASES = {"failed": TaskState.DEAD, "pending": TaskState.QUEUED, "running": TaskState.STARTED}


class DeadReason(StrEnum):
    """Why a task was dead-lettered."""

    FAILED = "failed"  # raised, and the task has no retry policy
    RETRIES_EXHAUSTED = "retries_exhausted"  # raised a retryable error on its last attempt
    NOT_RETRYABLE = "not_retryable"  # raised an error its retry policy never retries
    TIME_LIMIT = "time_limit"  # killed by its hard time limit
    POISON = "poison"  # delivered too often without finishing: the process running it died each time
    UNKNOWN_TASK = "unknown_task"  # names a task the worker does not know
    MALFORMED = "malformed"  # not a task message, or one that cannot be decoded
    FORGED = "forged"  # unsigned or wrongly signed while message signing is on
    EXPIRED = "expired"  # its ``expires`` passed before a worker ran it (its record says cancelled)

    @property
    def rejected(self) -> bool:
        """True if the message was refused without running (counted as rejected, not failed)."""
        return self in (
            DeadReason.POISON,
            DeadReason.UNKNOWN_TASK,
            DeadReason.MALFORMED,
            DeadReason.FORGED,
            DeadReason.EXPIRED,
        )


class Header(StrEnum):
    """``x-taskplane-*`` message headers."""

    #: When the message is due to run (Unix ms, publisher's clock); stamped on every published message.
    READY = "x-taskplane-ready-ms"
    #: ``[dead queue, letter id]``: take this dead letter in the same step as the message is queued.
    REQUEUE = "x-taskplane-requeue"
    #: The attempt number whose rate-limit slot was already reserved.
    SLOT = "x-taskplane-slot"
    #: The digest of the task's uniqueness lock.
    UNIQUE = "x-taskplane-unique"
    #: HMAC over body and headers, when message signing is on (``TASKPLANE_SIGNING_KEY``).
    SIGNATURE = "x-taskplane-signature"
    #: What the worker's fetch did to start the task (``<verdict code>:<deliveries>``, see
    #: ``taskplane.stores.records.fetched_start``); set (or removed) by the worker's channel on every message
    #: it hands over, never taken from a publisher.
    STARTED = "x-taskplane-started"
    #: The ``eta`` a message was published with (a countdown, an ETA, a retry): the transport keeps it in the
    #: delayed set and drops Celery's ``eta`` header (a worker never holds it); the task's ``request.eta``
    #: shows it again.
    ETA = "x-taskplane-eta"


class PublishOption(StrEnum):
    """Private ``send_task``/``apply_async`` options taskplane passes to itself (never sent to the broker)."""

    #: False: do not write the "queued" record (a re-publication or a requeue writes its own).
    RECORD = "taskplane_record"
    #: True: a re-publication of a running task (retry, rate-limit wait): no uniqueness claim, no record.
    REPUBLISH = "taskplane_republish"
    #: ``[dead queue, letter id]`` of a dead letter this publication requeues.
    REQUEUE_OF = "taskplane_requeue_of"
    #: An :class:`taskplane.stores.idempotency.IdempotencyClaim` the publish script takes with the message.
    IDEMPOTENCY = "taskplane_idempotency"


class TransportOption(StrEnum):
    """taskplane's keys in Celery's ``broker_transport_options``."""

    PREFIX = "taskplane_prefix"
    MAX_PAYLOAD = "taskplane_max_payload"
    DEAD_LETTER_CAP = "taskplane_dead_letter_cap"
    DEAD_LETTER_MAX_BYTES = "taskplane_dead_letter_max_bytes"
    RECORD_RETENTION = "taskplane_record_retention"
    SIGNING_KEYS = "taskplane_signing_keys"
    #: Set by the worker's consumer on its own connection: ``[worker name, [task names]]``, whose fetch
    #: starts the tasks it takes except those named (their process starts them).
    FETCH_START = "taskplane_fetch_start"
    #: How long (ms) a message a worker fetched ahead may wait for a free process (0: none fetched ahead).
    LOOKAHEAD_MS = "taskplane_lookahead_ms"
    #: The ``redis+cluster://`` URL of a cluster (kombu's own URL then names one of its nodes).
    CLUSTER = "taskplane_cluster"


class Metric(StrEnum):
    """Every metric taskplane exports (the Celery exporter's names where one exists)."""

    SENT = "celery_task_sent_total"
    RECEIVED = "celery_task_received_total"
    STARTED = "celery_task_started_total"
    SUCCEEDED = "celery_task_succeeded_total"
    FAILED = "celery_task_failed_total"
    RETRIED = "celery_task_retried_total"
    REVOKED = "celery_task_revoked_total"
    REJECTED = "celery_task_rejected_total"
    RATE_LIMITED = "taskplane_rate_limited_total"
    RETRIES = "taskplane_retries_total"
    RUNTIME = "celery_task_runtime"
    QUEUE_WAIT = "taskplane_task_queue_wait_seconds"
    QUEUE_LENGTH = "celery_queue_length"
    DELAYED = "taskplane_delayed"
    DEAD_LETTERS = "taskplane_dead_letters"
    WORKER_UP = "celery_worker_up"
    WORKER_ACTIVE = "celery_worker_tasks_active"
    SCHEDULER_LEADER = "taskplane_scheduler_leader"
    SCHEDULE_LAST_RUN = "taskplane_schedule_last_run_timestamp"
    REDIS_UP = "taskplane_redis_up"
