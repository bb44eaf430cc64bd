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
from typing import TYPE_CHECKING

from taskplane.redis.client import CONNECTION_ERRORS
from taskplane.scheduler.registry import FIRE_LOG_CAP, redis_now_ms
from taskplane.scheduler.schedule import Schedule

if TYPE_CHECKING:
    from taskplane.app import Taskplane

log = logging.getLogger("taskplane.scheduler")

NOT_LEADER = -1


class Scheduler:
    """One scheduler: call :meth:`step` in a loop (or :meth:`run`); :meth:`release` when stopping."""

    def __init__(
        self,
        tp: Taskplane,
        owner: str | None = None,
        lease_ttl: float | None = None,
        tick: float | None = None,
        grace: float | None = None,
    ) -> None:
        self.tp = tp
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_ttl_ms = round((lease_ttl or tp.settings.scheduler_lease_ttl) * 1000)
        self.tick = tick or tp.settings.scheduler_tick
        self.grace_ms = round((tp.settings.scheduler_grace if grace is None else grace) * 1000)
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
        log.info("scheduler %s: %d schedule(s): %s", self.owner, len(self.tp.schedules), self.tp.schedules.names())
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
        storage = self.tp.storage
        keys = [storage.keys.scheduler_lease(), storage.keys.scheduler_epoch()]
        token = storage.scripts.run("lease_acquire", keys, [self.owner, self.lease_ttl_ms, self.token or ""])
        if token != self.token:
            if token:
                log.info("scheduler %s leads (epoch %s)", self.owner, token.split(":", 1)[0])
            else:
                log.warning("scheduler %s lost the lease", self.owner)
        self.token = token or None
        if self.token is None:
            return
        now = redis_now_ms(storage.client)
        for schedule in self.tp.schedules:
            if self._due(schedule, now) == NOT_LEADER:
                log.warning("scheduler %s: the lease moved on; stepping down", self.owner)
                self.token = None
                return

    def release(self) -> None:
        """Give the lease up so another scheduler takes over at once."""
        if self.token is None:
            return
        try:
            storage = self.tp.storage
            storage.scripts.run("lease_release", [storage.keys.scheduler_lease()], [self.token])
            log.info("scheduler %s released the lease", self.owner)
        except CONNECTION_ERRORS as exc:
            log.warning("scheduler %s: could not release the lease (it expires by itself): %s", self.owner, exc)
        self.token = None

    def _due(self, schedule: Schedule, now: int) -> int:
        """Claim and fire ``schedule``'s due slot if there is one; returns the claim's result."""
        state = self.tp.schedules.state(schedule.name)
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
        storage = self.tp.storage
        fires = kind in ("fire", "late")
        task_id = str(uuid.uuid4()) if fires else ""
        entry = json.dumps(
            {"slot_ms": slot, "task_id": task_id or None, "fired_ms": now, "kind": kind, "epoch": self.epoch}
        )
        keys = [storage.keys.scheduler_lease(), storage.keys.schedule(schedule.name)]
        keys.append(storage.keys.schedule_fires(schedule.name))
        result = int(
            storage.scripts.run("schedule_claim", keys, [self.token, slot, task_id, now, kind, FIRE_LOG_CAP, entry])
        )
        if result != 1 or not fires:
            if kind == "skip" and result == 1:
                log.info("schedule %s: slot %d was missed; skipped (missed='skip')", schedule.name, slot)
            return result
        try:
            self.tp.enqueue(schedule.task, schedule.args, schedule.kwargs, queue=schedule.queue, task_id=task_id)
        except Exception as exc:  # the slot is claimed: it is lost rather than ever fired twice
            log.error("schedule %s: slot %d claimed but the task was not queued: %s", schedule.name, slot, exc)
            return result
        late = " (late)" if kind == "late" else ""
        log.info("schedule %s: fired %s for slot %d%s", schedule.name, task_id, slot, late)
        return result
