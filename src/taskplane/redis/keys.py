"""Every Redis key taskplane owns, as small pure functions of one namespace prefix."""

from __future__ import annotations

from dataclasses import dataclass

from taskplane.core.topology import DEAD_SUFFIX

#: Most tokens a queue's bell list keeps (more would only wake idle consumers that find nothing).
BELL_CAP = 1000
#: Message priorities 0 (first) to 9 (last), each its own list inside a queue: Celery's ``priority=`` orders
#: messages within one queue as on a plain Celery Redis setup with ``priority_steps=list(range(10))``.
PRIORITY_STEPS = tuple(range(10))
#: What separates a queue's name from the priority in the name of its priority's list (kombu's ``sep``).
PRIORITY_SEP = "\x06\x16"


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix (default ``taskplane:``), the queue lists included: two apps with different
    prefixes on one Redis never see each other's messages.

    The keys a queue owns share one cluster hash slot, that of the queue's first list ``<prefix><queue>``:
    each is named ``{<prefix><queue>}<suffix>`` (:meth:`tag`), and a hash tag hashes exactly like the key
    it repeats. A prefix that holds a hash tag itself (``{tp}:``) puts every key in that one slot."""

    prefix: str = "taskplane:"

    def tag(self, queue: str) -> str:
        """What every key ``queue`` owns starts with: its hash tag (``{taskplane:normal}``), or, when the prefix
        holds a hash tag of its own, the prefix and the queue (the prefix's tag decides the slot)."""
        return f"{self.prefix}{queue}" if "{" in self.prefix else f"{{{self.prefix}{queue}}}"

    def queue(self, queue: str, priority: int = 0) -> str:
        """The list of ``queue``'s messages of one priority. Priority 0 is named as kombu names it under the
        prefix (what a plain Celery client writes with ``broker_transport_options={"global_keyprefix":
        prefix}``); the other priorities' lists are under the queue's tag, in the same slot."""
        return f"{self.tag(queue)}{PRIORITY_SEP}{priority}" if priority else f"{self.prefix}{queue}"

    def kombu_list(self, queue: str, priority: int = 0) -> str:
        """The list kombu itself names for ``queue`` and ``priority`` under the prefix (what a plain Celery
        client with ``global_keyprefix`` writes): :meth:`queue` for priority 0; the worker adopts the others."""
        return f"{self.prefix}{queue}{PRIORITY_SEP}{priority}" if priority else f"{self.prefix}{queue}"

    def queue_lists(self, queue: str) -> list[str]:
        """Every list of ``queue``, priority 0 first."""
        return [self.queue(queue, priority) for priority in PRIORITY_STEPS]

    def purging(self, queue: str) -> str:
        """List of the messages a purge of ``queue`` took out and has not finished with."""
        return f"{self.tag(queue)}:purging"

    def queue_of(self, list_name: str) -> str:
        """The queue a list of :meth:`queue_lists` belongs to."""
        name = list_name.rsplit(PRIORITY_SEP, 1)[0] if PRIORITY_SEP in list_name else list_name
        if "{" not in self.prefix:
            name = name.removeprefix("{").removesuffix("}")
        return name.removeprefix(self.prefix)

    def record(self, queue: str, task_id: str) -> str:
        """Hash holding one task record, under the tag of the queue the task was sent to (written in the same
        step as its message). Found by id alone by reading it under every queue (:meth:`RecordStore.get`)."""
        return f"{self.tag(queue)}:task:{task_id}"

    def index_state(self, queue: str, state: str) -> str:
        """Sorted set of the ids of ``queue``'s tasks in one state."""
        return f"{self.tag(queue)}:tasks:state:{state}"

    def index_name(self, queue: str, name: str) -> str:
        """Sorted set of the ids of ``queue``'s tasks of one task name."""
        return f"{self.tag(queue)}:tasks:name:{name}"

    def index_queue(self, queue: str) -> str:
        """Sorted set of the ids of every task recorded in ``queue``."""
        return f"{self.tag(queue)}:tasks"

    def delayed(self, queue: str) -> str:
        """Sorted set of delayed messages for one queue, scored by due time."""
        return f"{self.tag(queue)}:delayed"

    def dead_index(self, dead_queue: str) -> str:
        """Sorted set of dead-letter ids in one dead-letter queue, scored by last failure time."""
        return self._dead(dead_queue)

    def dead_items(self, dead_queue: str) -> str:
        """Hash of dead-letter envelopes (id -> JSON) of one dead-letter queue."""
        return f"{self._dead(dead_queue)}:items"

    def dead_dropped(self, dead_queue: str) -> str:
        """Counter of envelopes dropped from one dead-letter queue by its cap."""
        return f"{self._dead(dead_queue)}:dropped"

    def dead_bytes(self, dead_queue: str) -> str:
        """Counter of the bytes of envelopes one dead-letter queue holds."""
        return f"{self._dead(dead_queue)}:bytes"

    def _dead(self, dead_queue: str) -> str:
        """What a dead-letter queue's keys start with: under the tag of the queue it holds the letters of."""
        return f"{self.tag(dead_queue.removesuffix(DEAD_SUFFIX))}:dead"

    def dead_queues(self) -> str:
        """Set of queue names that have (or had) dead letters."""
        return f"{self.prefix}dlq-queues"

    def cancel(self, queue: str, task_id: str) -> str:
        """Cancellation marker of one task, under the tag of its queue (read by its start)."""
        return f"{self.tag(queue)}:cancel:{task_id}"

    def halves(self, name: str, *rest: str) -> tuple[str, str]:
        """What the key name of method ``name`` called with a queue (and ``rest``, empty strings: the id, task
        name or state that ends the key) is made of around the queue's name, for a script that names keys for
        a queue it learns from a message: ``before + queue + after + the rest``."""
        made = getattr(self, name)("\0", *rest)
        before, _, after = str(made).partition("\0")
        return before, after

    def unique(self, queue: str, digest: str) -> str:
        """Uniqueness lock holding the id of the task that owns it (under the tag of the queue the task is
        published to, which takes the lock in the same step)."""
        return f"{self.tag(queue)}:unique:{digest}"

    def sent(self, queue: str, nonce: str) -> str:
        """A publish's own claim: there once the publish went out, so a resend of it writes nothing."""
        return f"{self.tag(queue)}:sent:{nonce}"

    def idempotency(self, queue: str, digest: str) -> str:
        """The task id (and call fingerprint) an idempotency key is bound to, for publishes to ``queue``."""
        return f"{self.tag(queue)}:idempotency:{digest}"

    def events(self, queue: str, task_id: str) -> str:
        """Pub/sub channel carrying every change written to one task record (named under its queue's tag: the
        record script declares it with its keys)."""
        return f"{self.tag(queue)}:events:{task_id}"

    def session(self, digest: str) -> str:
        """A dashboard session (by the digest of its token): the id of the API key it signed in with."""
        return f"{self.prefix}session:{digest}"

    def sign_in_failures(self, client: str) -> str:
        """Failed sign-ins from one client address in the current minute."""
        return f"{self.prefix}sign-in-failures:{client}"

    def api_keys(self) -> str:
        """Hash of API keys: key id -> JSON with name, scopes and the secret's digest."""
        return f"{self.prefix}api-keys"

    def rate(self, queue: str, name: str, key: str = "") -> str:
        """GCRA state (theoretical arrival time) of one rate limit of task ``name`` run from ``queue`` (under
        the queue's tag: reserved in the same step as the task's start)."""
        return f"{self.tag(queue)}:rate:{name}:{key}" if key else f"{self.tag(queue)}:rate:{name}"

    def scheduler_tag(self) -> str:
        """What every scheduler key starts with: a hash tag of its own (``{taskplane:scheduler}``), so that a
        claim, fenced by the leader's lease, touches one cluster slot."""
        return self.tag("scheduler")

    def scheduler_lease(self) -> str:
        """The scheduler leader's lease: ``<epoch>:<owner>``, expiring unless renewed."""
        return f"{self.scheduler_tag()}:leader"

    def scheduler_epoch(self) -> str:
        """Counter of leader terms; each new lease takes the next number (the fencing token)."""
        return f"{self.scheduler_tag()}:epoch"

    def schedule(self, name: str) -> str:
        """Hash with one schedule's state: paused, last slot, last run, last task, counters."""
        return f"{self.scheduler_tag()}:schedule:{name}"

    def schedule_fires(self, name: str) -> str:
        """List (newest first, capped) of one schedule's firings as JSON."""
        return f"{self.scheduler_tag()}:schedule:{name}:fires"

    def worker(self, hostname: str) -> str:
        """Hash with one worker's heartbeat and counters."""
        return f"{self.prefix}worker:{hostname}"

    def workers(self) -> str:
        """Sorted set of worker hostnames scored by last heartbeat."""
        return f"{self.prefix}workers"

    def unacked(self, queue: str) -> str:
        """Hash of ``queue``'s deliveries in flight (delivery tag -> ``[message, exchange, routing key]`` as
        JSON, kombu's format), until they are acknowledged or their lease returns them."""
        return f"{self.tag(queue)}:unacked"

    def unacked_index(self, queue: str) -> str:
        """Lease index of ``queue``'s deliveries in flight (delivery tag -> time of the last renewal)."""
        return f"{self.tag(queue)}:unacked_index"

    def bell(self, queue: str) -> str:
        """List of tokens, one per message put in ``queue`` that no consumer has taken yet: idle
        consumers block on it (a message leaves its queue only through the fetch script)."""
        return f"{self.tag(queue)}:bell"

    def quarantine(self, queue: str) -> str:
        """Hash of items taken from ``queue`` that are not messages, until they are dead-lettered (sha1 of the
        item -> its list's name, a newline, the item)."""
        return f"{self.tag(queue)}:quarantine"

    def unacked_mutex(self, queue: str) -> str:
        """Mutex of the sweep that returns ``queue``'s deliveries whose lease ran out (one sweeper at a time)."""
        return f"{self.tag(queue)}:unacked_mutex"

    def metrics(self, hostname: str) -> str:
        """Hash of one host's task metrics: JSON ``[metric, *label values]`` -> running total."""
        return f"{self.prefix}metrics:{hostname}"

    def metrics_minute(self, minute: int) -> str:
        """Hash of what finished in one minute (Unix time // 60), all hosts together; expires (dashboard charts)."""
        return f"{self.prefix}metrics-minute:{minute}"

    def metrics_hosts(self) -> str:
        """Sorted set of hosts that wrote task metrics, scored by their last write (Unix seconds)."""
        return f"{self.prefix}metrics-hosts"
