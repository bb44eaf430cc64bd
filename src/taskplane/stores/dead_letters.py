"""Dead-letter queues: one per queue (``<queue>.dead``), capped in letters and in bytes, newest first, with
full envelopes (an envelope's raw item and traceback cut to a bounded size)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from taskplane.core.clock import now_ms
from taskplane.redis.storage import Storage

#: Characters of a raw queue item a dead letter keeps (the rest is cut; ``raw_size`` says how long it was).
MAX_RAW_CHARS = 1 << 20
#: Characters of a traceback a dead letter keeps (its end, where the error is).
MAX_TRACEBACK_CHARS = 64 * 1024


@dataclass(frozen=True)
class DeadLetterCap:
    """How much one dead-letter queue keeps: at most ``letters`` envelopes and ``total_bytes`` of them (the
    newest letter is always kept); the oldest go first, counted as dropped."""

    letters: int
    total_bytes: int


@dataclass
class DeadLetter:
    """A dead task with everything needed to understand and requeue it."""

    id: str
    name: str
    queue: str
    reason: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    exception_type: str = ""
    exception_message: str = ""
    traceback: str = ""
    attempts: int = 0
    first_failure_ms: int = 0
    last_failure_ms: int = 0
    worker: str = ""
    raw: str | None = None  # the undecodable/unroutable message as it was in the queue
    priority: int = 0  # the message's priority within its queue (kept when it is requeued)
    raw_size: int = 0  # the raw item's length when it was cut to MAX_RAW_CHARS (0: kept whole)
    raw_encoding: str = ""  # "base64": ``raw`` is the base64 of an item's bytes that are not UTF-8 text

    @property
    def dead_queue(self) -> str:
        """The dead-letter queue holding this letter."""
        return f"{self.queue}.dead"

    def bounded(self) -> DeadLetter:
        """This letter with its raw item and traceback cut to their bounds (a 50 MB item keeps 1 MiB)."""
        if self.raw is not None and len(self.raw) > MAX_RAW_CHARS:
            self.raw_size = len(self.raw)
            self.raw = self.raw[:MAX_RAW_CHARS]
        if len(self.traceback) > MAX_TRACEBACK_CHARS:
            self.traceback = "...\n" + self.traceback[-MAX_TRACEBACK_CHARS:]
        return self

    def to_json(self) -> str:
        """Serialised envelope."""
        return json.dumps(asdict(self), default=repr, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> DeadLetter:
        """Parse an envelope written by :meth:`to_json`."""
        return cls(**json.loads(text))

    def to_dict(self, with_raw: bool = False) -> dict[str, Any]:
        """A JSON-friendly view (the raw message only when asked)."""
        data = asdict(self)
        data["dead_queue"] = self.dead_queue
        if not with_raw:
            data.pop("raw")
        return data


@dataclass(frozen=True)
class DeadFilter:
    """Which dead letters an operation applies to; empty fields match everything."""

    queue: str | None = None
    task: str | None = None
    reason: str | None = None

    def matches(self, letter: DeadLetter) -> bool:
        """True if ``letter`` passes this filter."""
        return (
            (self.task is None or letter.name == self.task)
            and (self.reason is None or letter.reason == self.reason)
            and (self.queue is None or letter.queue == self.queue)
        )


class DeadLetterStore:
    """Adds, lists, shows, removes and counts dead letters. Requeueing lives in the app (it publishes)."""

    def __init__(self, storage: Storage, queues: list[str], cap: DeadLetterCap) -> None:
        self._storage = storage
        self._queues = queues
        self._cap = cap

    def add(self, letter: DeadLetter) -> int:
        """Store ``letter`` (bounded; replacing one with the same id); returns how many old letters the caps
        dropped."""
        keys = self._storage.keys
        stamp = letter.last_failure_ms or now_ms()
        letter.last_failure_ms = stamp
        letter.first_failure_ms = letter.first_failure_ms or stamp
        dead = letter.dead_queue
        script_keys = [keys.dead_index(dead), keys.dead_items(dead), keys.dead_dropped(dead), keys.dead_bytes(dead)]
        envelope = letter.bounded().to_json()
        batch = self._storage.batch()
        # the set of queues with letters lives in a slot of its own: named first, so a listing never misses
        # a letter (a name whose letters are gone lists nothing)
        batch.pipe.sadd(keys.dead_queues(), letter.queue)
        batch.script("dead_add", script_keys, [letter.id, envelope, stamp, self._cap.letters, self._cap.total_bytes])
        return int(batch.execute()[1])

    def get(self, letter_id: str, queue: str | None = None) -> DeadLetter | None:
        """The dead letter with this id (searched in every dead-letter queue unless one is named)."""
        keys = self._storage.keys
        queues = [queue] if queue else self._known_queues()
        pipe = self._storage.client.pipeline(transaction=False)
        for name in queues:
            pipe.hget(keys.dead_items(f"{name}.dead"), letter_id)
        for text in pipe.execute():
            if text:
                return DeadLetter.from_json(text)
        return None

    def find(self, where: DeadFilter = DeadFilter(), limit: int = 50, offset: int = 0) -> list[DeadLetter]:
        """Dead letters newest first, filtered, paged. One queue without a task or reason filter is read
        at its offset directly (two commands, however deep the page); otherwise the queues are merged
        and filtered page by page."""
        if where.queue and where.task is None and where.reason is None:
            keys = self._storage.keys
            dead = f"{where.queue}.dead"
            ids = self._storage.client.zrevrange(keys.dead_index(dead), offset, offset + limit - 1)
            texts = self._storage.client.hmget(keys.dead_items(dead), ids) if ids else []
            return [DeadLetter.from_json(text) for text in texts if text]
        found: list[DeadLetter] = []
        skipped = 0
        for letter in self.iterate(where):
            if skipped < offset:
                skipped += 1
                continue
            found.append(letter)
            if len(found) >= limit:
                break
        return found

    def count(self, where: DeadFilter = DeadFilter()) -> int:
        """How many dead letters match: a ZCARD per queue without a task or reason filter, else a scan of
        the queues' letters (page by page)."""
        if where.task is None and where.reason is None:
            counts = self.counts()
            return counts.get(where.queue, 0) if where.queue else sum(counts.values())
        return sum(1 for _ in self.iterate(where))

    def iterate(self, where: DeadFilter = DeadFilter(), page: int = 200) -> Iterator[DeadLetter]:
        """Every matching dead letter, newest first across queues, read a page (two commands) at a time."""
        keys = self._storage.keys
        client = self._storage.client
        queues = [where.queue] if where.queue else self._known_queues()
        cursors = {name: 0 for name in queues}
        buffers: dict[str, list[tuple[float, str | None]]] = {name: [] for name in queues}
        while True:
            for name in queues:
                if not buffers[name] and cursors[name] >= 0:
                    start = cursors[name]
                    dead = f"{name}.dead"
                    rows = client.zrevrange(keys.dead_index(dead), start, start + page - 1, withscores=True)
                    texts = client.hmget(keys.dead_items(dead), [member for member, _ in rows]) if rows else []
                    buffers[name] = [(float(score), text) for (_, score), text in zip(rows, texts, strict=True)]
                    cursors[name] = start + len(rows) if len(rows) == page else -1
            live = [name for name in queues if buffers[name]]
            if not live:
                return
            newest = max(live, key=lambda name: buffers[name][0][0])
            _, text = buffers[newest].pop(0)
            if text is None:
                continue
            letter = DeadLetter.from_json(text)
            if where.matches(letter):
                yield letter

    def remove(self, letter: DeadLetter) -> bool:
        """Delete one dead letter; True if it was there."""
        keys = self._storage.keys
        dead = letter.dead_queue
        script_keys = [keys.dead_index(dead), keys.dead_items(dead), keys.dead_bytes(dead)]
        return bool(self._storage.scripts.run("dead_remove", keys=script_keys, args=[letter.id]))

    def size(self, queue: str) -> int:
        """Bytes of envelopes ``queue``'s dead-letter queue holds (what ``dead_letter_max_bytes`` caps)."""
        value = self._storage.client.get(self._storage.keys.dead_bytes(f"{queue}.dead"))
        return int(value or 0)

    def counts(self) -> dict[str, int]:
        """Number of dead letters per queue (keyed by the live queue's name)."""
        keys = self._storage.keys
        pipe = self._storage.client.pipeline(transaction=False)
        queues = self._known_queues()
        for name in queues:
            pipe.zcard(keys.dead_index(f"{name}.dead"))
        return dict(zip(queues, (int(n) for n in pipe.execute()), strict=True))

    def dropped(self, queue: str) -> int:
        """How many letters the caps have dropped from ``queue``'s dead-letter queue."""
        value = self._storage.client.get(self._storage.keys.dead_dropped(f"{queue}.dead"))
        return int(value or 0)

    def _known_queues(self) -> list[str]:
        """Declared queues first, then any other queue that has had dead letters (e.g. unroutable)."""
        names = list(self._queues)
        for name in sorted(self._storage.client.smembers(self._storage.keys.dead_queues())):
            if name not in names:
                names.append(name)
        return names
