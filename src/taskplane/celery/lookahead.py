"""Lookahead for the lossless fetch (:mod:`taskplane.celery.fetch`): a worker's fetch takes one message more
than its free processes take and holds it for the next process that frees, so that a short task does not
wait for a fetch between the task before it and itself.

A held message is in flight under its lease and started by the fetch, but not yet Celery's. It goes to
the next process that frees if it was held no longer than ``lookahead_ms``; otherwise (no process freed in
time: the tasks are long, and a fetch is no cost to them) it goes back to the head of its list with its
start undone (``unfetch.lua``), from a timer on the worker's event loop or when a process frees, and no
message is fetched ahead for a second. Tiers so stay strict but for messages published in the last
``lookahead_ms``. A closing channel returns what it holds.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from kombu.transport import redis as kombu_redis

from taskplane.celery.intake import Intake
from taskplane.celery.validation import parse_item
from taskplane.core.protocol import TaskState
from taskplane.redis.keys import BELL_CAP, Keys
from taskplane.redis.scripts import run_script
from taskplane.stores.records import RecordStore, fetched_start


class Held(NamedTuple):
    """A message fetched ahead, held for the next free process."""

    list_name: str
    queue: str
    item: str
    tag: str
    started: str | None  # what the fetch did to start it (Header.STARTED)
    held_at: float  # time.monotonic()


#: How long no message is fetched ahead after a held one went stale (s).
BACK_OFF = 1.0


class Lookahead(Intake):
    """Mixin for the fetch (needs kombu's Redis channel under it)."""

    #: Messages fetched ahead for the next free process.
    _taskplane_held: list[Held]
    #: No message is fetched ahead before this time (monotonic): the last one held went stale.
    _taskplane_ahead_after: float = 0.0

    @property
    def _keys(self) -> Keys:
        raise NotImplementedError

    def _hold_for(self) -> float:
        """Seconds a message fetched ahead may wait for a free process (0: fetch none ahead)."""
        raise NotImplementedError

    def _records(self) -> RecordStore:
        """The task records of this channel's server."""
        raise NotImplementedError

    def _hold(self, list_name: str, queue: str, item: str, tag: str, started: str | None) -> None:
        """Keep a message fetched ahead for the next free process (see the module)."""
        self._taskplane_held.append(Held(list_name, queue, item, tag, started, time.monotonic()))
        channel: Any = self
        hub = getattr(channel.connection, "taskplane_hub", None)
        if hub is not None:
            hub.call_later(self._hold_for(), self.return_stale)

    def _looks_ahead(self) -> bool:
        """True if the next fetch takes one message more than the free processes take (none is held, and
        none went stale in the last :data:`BACK_OFF` seconds: tasks that long gain nothing by it)."""
        return bool(self._hold_for()) and not self._taskplane_held and time.monotonic() >= self._taskplane_ahead_after

    def _hand_over_held(self, free: int) -> int:
        """Put the stale held messages back (:meth:`return_stale`), then hand the others to up to ``free``
        free processes. Returns how many were handed over."""
        if self._taskplane_held:
            self.return_stale()
        handed = 0
        while self._taskplane_held and handed < free:
            entry = self._taskplane_held.pop(0)
            handed += self._take(entry.queue, entry.item, entry.tag, entry.started)
        return handed

    def return_stale(self) -> None:
        """Put the held messages older than :meth:`_hold_for` back at the head of their lists."""
        limit = time.monotonic() - self._hold_for()
        stale = [entry for entry in self._taskplane_held if entry.held_at < limit]
        self._taskplane_held = [entry for entry in self._taskplane_held if entry.held_at >= limit]
        if stale:
            self._taskplane_ahead_after = time.monotonic() + BACK_OFF
            self._put_back_stale(stale)

    def _put_back_stale(self, stale: list[Held]) -> None:
        """Put ``stale`` back, one by one (a cluster channel does it off the main loop)."""
        for entry in stale:
            self._put_back(entry)

    def return_held(self) -> None:
        """Put every held message back at the head of its list (the channel closes)."""
        held, self._taskplane_held = self._taskplane_held, []
        for entry in held:
            self._put_back(entry)

    def _put_back(self, entry: Held) -> None:
        """Return one held message to the head of its list, undoing its start (``unfetch.lua``); if Redis is
        unreachable, its lease returns it."""
        channel: Any = self
        names = self._keys
        keys = [names.unacked(entry.queue), names.unacked_index(entry.queue), entry.list_name, names.bell(entry.queue)]
        args: list[Any] = [entry.tag, entry.item, BELL_CAP]
        started = fetched_start(entry.started)
        message, _ = parse_item(entry.item)  # a hostile item held ahead goes back as it is, without a record write
        if started is not None and started[0] == "run" and message is not None:
            headers = message.get("headers") or {}
            record_keys, record_args = self._records().write_script(
                str(headers.get("id")), str(headers.get("task")), entry.queue, TaskState.QUEUED
            )
            keys, args = keys + record_keys, args + record_args
        try:
            with channel.conn_or_acquire() as client:
                run_script(client, "unfetch", keys, args)
        except Exception as exc:  # unreachable, or the channel closed under a timer: the lease returns it
            kombu_redis.logger.warning("could not return held message %s (%s); its lease returns it", entry.tag, exc)
