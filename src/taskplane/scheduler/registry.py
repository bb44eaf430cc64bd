"""The schedules an app declares (``tp.periodic``) and their state in Redis: pause, resume, run now, status."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from celery.utils import uuid

from taskplane.core.errors import ConfigurationError, NotFoundError
from taskplane.stores.records import now_ms
from taskplane.scheduler.schedule import Missed, Schedule

if TYPE_CHECKING:
    from taskplane.app import Taskplane

FIRE_LOG_CAP = 1000


def redis_now_ms(client: Any) -> int:
    """The Redis server's clock in ms: every scheduler and operator reads the same clock."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


@dataclass(frozen=True)
class ScheduleStatus:
    """What ``taskplane schedules`` and ``GET /schedules`` show for one schedule."""

    name: str
    task: str
    schedule: str
    queue: str
    missed: str
    paused: bool
    next_run_ms: int | None
    last_run_ms: int | None
    last_task_id: str | None
    last_state: str | None
    last_source: str | None
    fired: int
    skipped: int
    manual: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Leader:
    """The current holder of the scheduler lease."""

    owner: str
    epoch: int
    expires_in_ms: int


class ScheduleRegistry:
    """Declared schedules of one app, and the operations on their shared state (no I/O until used)."""

    def __init__(self, tp: Taskplane) -> None:
        self._tp = tp
        self._schedules: dict[str, Schedule] = {}

    def declare(
        self,
        task: Any,
        *,
        every: float | None = None,
        cron: str | None = None,
        tz: str = "UTC",
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        queue: str | None = None,
        name: str | None = None,
        missed: Missed = "run_once",
    ) -> Schedule:
        """Declare a schedule (see :meth:`taskplane.Taskplane.periodic`)."""
        task_name = self._tp.registry.name_of(task)
        if task_name is None:
            raise ConfigurationError(f"periodic() needs a task or a task name, not {task!r}")
        self._tp.check_arguments(task_name, tuple(args), dict(kwargs or {}))
        if queue is not None:
            self._tp.topology.get(queue)
        schedule = Schedule(
            name=name or task_name,
            task=task_name,
            every=every,
            cron=cron,
            tz=tz,
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            queue=queue,
            missed=missed,
        )
        if schedule.name in self._schedules:
            raise ConfigurationError(f"a schedule named {schedule.name!r} exists already; pass name=")
        self._schedules[schedule.name] = schedule
        return schedule

    def __iter__(self) -> Any:
        return iter(self._schedules.values())

    def __len__(self) -> int:
        return len(self._schedules)

    def names(self) -> list[str]:
        """Names of the declared schedules."""
        return sorted(self._schedules)

    def get(self, name: str) -> Schedule:
        """The schedule called ``name``.

        Raises:
            NotFoundError: none is declared (the message lists the declared ones).
        """
        if name not in self._schedules:
            known = ", ".join(self.names()) or "none"
            raise NotFoundError(f"no schedule named {name!r}; declared: {known}")
        return self._schedules[name]

    def state(self, name: str) -> dict[str, str]:
        """The raw state hash of one schedule."""
        storage = self._tp.storage
        return storage.client.hgetall(storage.keys.schedule(name))  # type: ignore[no-any-return]

    def pause(self, name: str) -> ScheduleStatus:
        """Stop firing ``name`` until resumed; kept in Redis, so it lasts across restarts."""
        self.get(name)
        storage = self._tp.storage
        storage.client.hset(storage.keys.schedule(name), "paused", "1")
        return self.status(name)

    def resume(self, name: str) -> ScheduleStatus:
        """Fire ``name`` again from its next slot (slots that passed while paused are not fired)."""
        schedule = self.get(name)
        storage = self._tp.storage
        slot = schedule.slot_at_or_before(redis_now_ms(storage.client))
        storage.scripts.run("schedule_resume", [storage.keys.schedule(name)], [slot])
        return self.status(name)

    def run(self, name: str) -> str:
        """Fire ``name`` now, outside its slots (also when paused); returns the task id."""
        schedule = self.get(name)
        task_id = uuid()
        handle = self._tp.enqueue(schedule.task, schedule.args, schedule.kwargs, queue=schedule.queue, task_id=task_id)
        storage = self._tp.storage
        fired = now_ms()
        pipe = storage.client.pipeline()
        key = storage.keys.schedule(name)
        pipe.hset(key, mapping={"last_run_ms": fired, "last_task_id": handle.id, "last_source": "manual"})
        pipe.hincrby(key, "manual", 1)
        entry = {"slot_ms": None, "task_id": handle.id, "fired_ms": fired, "kind": "manual", "epoch": None}
        pipe.lpush(storage.keys.schedule_fires(name), json.dumps(entry))
        pipe.ltrim(storage.keys.schedule_fires(name), 0, FIRE_LOG_CAP - 1)
        pipe.execute()
        return handle.id

    def fires(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        """The schedule's latest firings (and skipped slots), newest first."""
        self.get(name)
        storage = self._tp.storage
        raw = storage.client.lrange(storage.keys.schedule_fires(name), 0, limit - 1)
        return [json.loads(item) for item in raw]

    def status(self, name: str) -> ScheduleStatus:
        """Status of one schedule.

        Raises:
            NotFoundError: no such schedule.
        """
        schedule = self.get(name)
        state = self.state(name)
        paused = state.get("paused") == "1"
        last_slot = int(state["last_slot_ms"]) if "last_slot_ms" in state else None
        last_task_id = state.get("last_task_id")
        record = self._tp.records.get(last_task_id) if last_task_id else None
        now = redis_now_ms(self._tp.storage.client)
        return ScheduleStatus(
            name=schedule.name,
            task=schedule.task,
            schedule=schedule.description,
            queue=schedule.queue or self._tp.queue_for(schedule.task),
            missed=schedule.missed,
            paused=paused,
            next_run_ms=None if paused else schedule.slot_after(max(now, last_slot or 0)),
            last_run_ms=int(state["last_run_ms"]) if "last_run_ms" in state else None,
            last_task_id=last_task_id,
            last_state=record.state if record else None,
            last_source=state.get("last_source"),
            fired=int(state.get("fired", 0)),
            skipped=int(state.get("skipped", 0)),
            manual=int(state.get("manual", 0)),
        )

    def statuses(self) -> list[ScheduleStatus]:
        """Status of every declared schedule, by name."""
        return [self.status(name) for name in self.names()]

    def last_runs(self) -> dict[str, int | None]:
        """Each declared schedule's last firing (Unix ms), or None if it never fired (one pipeline)."""
        storage = self._tp.storage
        names = self.names()
        pipe = storage.client.pipeline(transaction=False)
        for name in names:
            pipe.hget(storage.keys.schedule(name), "last_run_ms")
        return {name: int(value) if value else None for name, value in zip(names, pipe.execute(), strict=True)}

    def leader(self) -> Leader | None:
        """Who holds the scheduler lease now (None: no scheduler leads)."""
        storage = self._tp.storage
        pipe = storage.client.pipeline()
        pipe.get(storage.keys.scheduler_lease())
        pipe.pttl(storage.keys.scheduler_lease())
        token, ttl = pipe.execute()
        if not token:
            return None
        epoch, _, owner = token.partition(":")
        return Leader(owner=owner, epoch=int(epoch), expires_in_ms=max(int(ttl), 0))
