"""The scheduler process: any number may run; the one holding the fenced lease fires each slot at most once.

Each step a scheduler takes (or renews) the leader's lease in Redis. The lease names a term number
(the epoch, the fencing token); every slot is claimed by a script that checks the caller still holds
that exact lease and that the slot is newer than the last one claimed, so a slot fires at most once,
also across a leader change and from a leader that lost its lease while paused. When the leader dies,
its lease expires after the TTL and the next scheduler to poll takes over.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

from taskplane.core.settings import Settings
from taskplane.redis.client import CONNECTION_ERRORS
from taskplane.scheduler.registry import Enqueue, Schedules
from taskplane.scheduler.schedule import Schedule
from taskplane.stores.schedules import ScheduleStore

log = logging.getLogger("taskplane.scheduler")

NOT_LEADER = -1


class Scheduler:
    """One scheduler: call :meth:`step` in a loop (or :meth:`run`); :meth:`release` when stopping."""

    def __init__(
        self,
        schedules: Schedules,
        store: Callable[[], ScheduleStore],
        enqueue: Enqueue,
        settings: Settings,
        owner: str | None = None,
        lease_ttl: float | None = None,
        tick: float | None = None,
        grace: float | None = None,
    ) -> None:
        self._schedules = schedules
        self._store = store
        self._enqueue = enqueue
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_ttl_ms = round((lease_ttl or settings.scheduler_lease_ttl) * 1000)
        self.tick = tick or settings.scheduler_tick
        self.grace_ms = round((settings.scheduler_grace if grace is None else grace) * 1000)
        self.token: str | None = None

    @property
    def is_leader(self) -> bool:
        """True while this scheduler holds the lease (as of its last step)."""
        return self.token is not None

    @property
    def epoch(self) -> int | None:
        """The term number of the lease held, if any."""
        return int(self.token.split(":", 1)[0]) if self.token else None

    def run(self, stop: threading.Event) -> None:
        """Step every tick until ``stop`` is set, then give the lease up."""
        log.info("scheduler %s: %d schedule(s): %s", self.owner, len(self._schedules), self._schedules.names())
        try:
            while not stop.is_set():
                try:
                    self.step()
                except CONNECTION_ERRORS as exc:
                    if self.token is not None:
                        log.warning("scheduler %s: Redis unreachable, not leading: %s", self.owner, exc)
                    self.token = None
                stop.wait(self.tick)
        finally:
            self.release()

    def step(self) -> None:
        """Take or renew the lease; as leader, fire every schedule whose slot is due."""
        store = self._store()
        token = store.acquire_lease(self.owner, self.lease_ttl_ms, self.token)
        if token != self.token:
            if token:
                log.info("scheduler %s leads (epoch %s)", self.owner, token.split(":", 1)[0])
            else:
                log.warning("scheduler %s lost the lease", self.owner)
        self.token = token or None
        if self.token is None:
            return
        now = store.now_ms()
        for schedule in self._schedules:
            if self._due(schedule, now) == NOT_LEADER:
                log.warning("scheduler %s: the lease moved on; stepping down", self.owner)
                self.token = None
                return

    def release(self) -> None:
        """Give the lease up so another scheduler takes over at once."""
        if self.token is None:
            return
        try:
            self._store().release_lease(self.token)
            log.info("scheduler %s released the lease", self.owner)
        except CONNECTION_ERRORS as exc:
            log.warning("scheduler %s: could not release the lease (it expires by itself): %s", self.owner, exc)
        self.token = None

    def _due(self, schedule: Schedule, now: int) -> int:
        """Claim and fire ``schedule``'s due slot if there is one; returns the claim's result."""
        state = self._store().state(schedule.name)
        if state.get("paused") == "1":
            return 0
        due = schedule.slot_at_or_before(now)
        if "last_slot_ms" not in state:  # first sight: start from the next slot
            return self._claim(schedule, due, now, "baseline")
        last = int(state["last_slot_ms"])
        if due <= last:
            return 0
        missed = now - due > self.grace_ms or schedule.slot_after(last) < due
        if not missed:
            return self._claim(schedule, due, now, "fire")
        return self._claim(schedule, due, now, "late" if schedule.missed == "run_once" else "skip")

    def _claim(self, schedule: Schedule, slot: int, now: int, kind: str) -> int:
        fires = kind in ("fire", "late")
        task_id = str(uuid.uuid4()) if fires else ""
        entry = json.dumps(
            {"slot_ms": slot, "task_id": task_id or None, "fired_ms": now, "kind": kind, "epoch": self.epoch}
        )
        assert self.token is not None
        result = self._store().claim(schedule.name, self.token, slot, task_id, now, kind, entry)
        if result != 1 or not fires:
            if kind == "skip" and result == 1:
                log.info("schedule %s: slot %d was missed; skipped (missed='skip')", schedule.name, slot)
            return result
        try:
            self._enqueue(schedule.task, schedule.args, schedule.kwargs, schedule.queue, task_id)
        except Exception as exc:  # the slot is claimed: it is lost rather than ever fired twice
            log.error("schedule %s: slot %d claimed but the task was not queued: %s", schedule.name, slot, exc)
            return result
        late = " (late)" if kind == "late" else ""
        log.info("schedule %s: fired %s for slot %d%s", schedule.name, task_id, slot, late)
        return result
