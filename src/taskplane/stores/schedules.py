"""Schedule state in Redis: pause, last slot and run, the firing log, and the fenced scheduler lease."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from taskplane.core.clock import now_ms
from taskplane.redis.storage import Storage

#: Firings (and skipped slots) kept per schedule, newest first.
FIRE_LOG_CAP = 1000


def redis_now_ms(client: Any) -> int:
    """The Redis server's clock in ms: every scheduler and operator reads the same clock."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


@dataclass(frozen=True)
class Leader:
    """The current holder of the scheduler lease."""

    owner: str
    epoch: int
    expires_in_ms: int


class ScheduleStore:
    """One hash and one capped firing log per schedule, plus the leader lease and its epoch counter."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def now_ms(self) -> int:
        """The Redis server's clock in ms."""
        return redis_now_ms(self._storage.client)

    def state(self, name: str) -> dict[str, str]:
        """The raw state hash of one schedule."""
        return self._storage.client.hgetall(self._storage.keys.schedule(name))  # type: ignore[no-any-return]

    def pause(self, name: str) -> None:
        """Mark ``name`` paused."""
        self._storage.client.hset(self._storage.keys.schedule(name), "paused", "1")

    def resume(self, name: str, from_slot_ms: int) -> None:
        """Unpause ``name``; the slot ``from_slot_ms`` and those before it count as passed."""
        self._storage.scripts.run("schedule_resume", [self._storage.keys.schedule(name)], [from_slot_ms])

    def record_manual_run(self, name: str, task_id: str) -> None:
        """Log a firing outside the schedule's slots."""
        keys = self._storage.keys
        fired = now_ms()
        pipe = self._storage.client.pipeline()
        key = keys.schedule(name)
        pipe.hset(key, mapping={"last_run_ms": fired, "last_task_id": task_id, "last_source": "manual"})
        pipe.hincrby(key, "manual", 1)
        entry = {"slot_ms": None, "task_id": task_id, "fired_ms": fired, "kind": "manual", "epoch": None}
        pipe.lpush(keys.schedule_fires(name), json.dumps(entry))
        pipe.ltrim(keys.schedule_fires(name), 0, FIRE_LOG_CAP - 1)
        pipe.execute()

    def fires(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        """The schedule's latest firings (and skipped slots), newest first."""
        raw = self._storage.client.lrange(self._storage.keys.schedule_fires(name), 0, limit - 1)
        return [json.loads(item) for item in raw]

    def last_runs(self, names: list[str]) -> dict[str, int | None]:
        """Each schedule's last firing (Unix ms), or None if it never fired (one pipeline)."""
        pipe = self._storage.client.pipeline(transaction=False)
        for name in names:
            pipe.hget(self._storage.keys.schedule(name), "last_run_ms")
        return {name: int(value) if value else None for name, value in zip(names, pipe.execute(), strict=True)}

    def leader(self) -> Leader | None:
        """Who holds the scheduler lease now (None: no scheduler leads)."""
        keys = self._storage.keys
        pipe = self._storage.client.pipeline()
        pipe.get(keys.scheduler_lease())
        pipe.pttl(keys.scheduler_lease())
        token, ttl = pipe.execute()
        if not token:
            return None
        epoch, _, owner = token.partition(":")
        return Leader(owner=owner, epoch=int(epoch), expires_in_ms=max(int(ttl), 0))

    def acquire_lease(self, owner: str, ttl_ms: int, token: str | None) -> str | None:
        """Take or renew the leader lease; returns the token held (``<epoch>:<owner>``), or None."""
        keys = self._storage.keys
        held = self._storage.scripts.run(
            "lease_acquire", [keys.scheduler_lease(), keys.scheduler_epoch()], [owner, ttl_ms, token or ""]
        )
        return str(held) if held else None

    def release_lease(self, token: str) -> None:
        """Give the lease up if ``token`` still holds it."""
        self._storage.scripts.run("lease_release", [self._storage.keys.scheduler_lease()], [token])

    def claim(self, name: str, token: str, slot: int, task_id: str, now: int, kind: str, entry: str) -> int:
        """Claim ``slot`` of ``name`` under the lease ``token`` (see lua/schedule_claim.lua for the result)."""
        keys = self._storage.keys
        script_keys = [keys.scheduler_lease(), keys.schedule(name), keys.schedule_fires(name)]
        script_args = [token, slot, task_id, now, kind, FIRE_LOG_CAP, entry]
        return int(self._storage.scripts.run("schedule_claim", script_keys, script_args))
