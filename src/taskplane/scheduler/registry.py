"""The schedules an app declares (``tp.periodic``) and the operations on them: status, pause, resume, run now."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from taskplane.core.errors import ConfigurationError, NotFoundError
from taskplane.core.ids import new_task_id
from taskplane.core.registry import TaskRegistry
from taskplane.core.topology import Topology
from taskplane.scheduler.schedule import Missed, Schedule
from taskplane.stores.records import RecordStore
from taskplane.stores.schedules import Leader, ScheduleStore

#: Queues a task: ``enqueue(name, args, kwargs, queue, task_id)``; returns the task id.
Enqueue = Callable[[str, tuple[Any, ...], dict[str, Any], str | None, str], str]


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


class Schedules:
    """Declared schedules of one app (``tp.schedules``), and the operations on their state in Redis.

    Declaring does no I/O; the stores are asked for only when an operation needs them.
    """

    def __init__(
        self,
        registry: TaskRegistry,
        topology: Topology,
        store: Callable[[], ScheduleStore],
        records: Callable[[], RecordStore],
        enqueue: Enqueue,
        queue_for: Callable[[str], str],
    ) -> None:
        self._registry = registry
        self._topology = topology
        self._store = store
        self._records = records
        self._enqueue = enqueue
        self._queue_for = queue_for
        self._schedules: dict[str, Schedule] = {}
        #: Called before the declared schedules are read, until it returns True: schedules declared elsewhere
        #: (the team's Celery ``beat_schedule``) are declared then. It gets True when the caller is about to
        #: use Redis anyway (it may then configure the app, which may start the embedded server).
        self.late: Callable[[bool], bool] | None = None

    def _declared(self, full: bool = True) -> dict[str, Schedule]:
        late, self.late = self.late, None  # (it reads the declared names itself)
        if late is not None and not late(full):
            self.late = late
        return self._schedules

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
        task_name = self._registry.name_of(task)
        if task_name is None:
            raise ConfigurationError(f"periodic() needs a task or a task name, not {task!r}")
        self._registry.check_arguments(task_name, tuple(args), dict(kwargs or {}))
        if queue is not None:
            self._topology.get(queue)
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

    def all(self) -> list[Schedule]:
        """Every declared schedule (the app is configured first: a team's Celery ``beat_schedule`` is in).

        Raises:
            ConfigurationError: a ``beat_schedule`` entry taskplane cannot run.
        """
        return list(self._declared().values())

    def __iter__(self) -> Iterator[Schedule]:
        return iter(self._declared().values())

    def __len__(self) -> int:
        return len(self._declared(full=False))

    def names(self) -> list[str]:
        """Names of the declared schedules (those of a team's Celery ``beat_schedule`` given with
        ``config_from_object`` or ``add_periodic_task`` once the app is configured)."""
        return sorted(self._declared(full=False))

    def get(self, name: str) -> Schedule:
        """The schedule called ``name``.

        Raises:
            NotFoundError: none is declared (the message lists the declared ones).
        """
        declared = self._declared()
        if name not in declared:
            known = ", ".join(self.names()) or "none"
            raise NotFoundError(f"no schedule named {name!r}; declared: {known}")
        return declared[name]

    def state(self, name: str) -> dict[str, str]:
        """The raw state hash of one schedule."""
        return self._store().state(name)

    def pause(self, name: str) -> ScheduleStatus:
        """Stop firing ``name`` until resumed; kept in Redis, so it lasts across restarts."""
        self.get(name)
        self._store().pause(name)
        return self.status(name)

    def resume(self, name: str) -> ScheduleStatus:
        """Fire ``name`` again from its next slot (slots that passed while paused are not fired)."""
        schedule = self.get(name)
        store = self._store()
        store.resume(name, schedule.slot_at_or_before(store.now_ms()))
        return self.status(name)

    def run(self, name: str) -> str:
        """Fire ``name`` now, outside its slots (also when paused); returns the task id."""
        schedule = self.get(name)
        task_id = self._enqueue(schedule.task, schedule.args, schedule.kwargs, schedule.queue, new_task_id())
        self._store().record_manual_run(name, task_id)
        return task_id

    def fires(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        """The schedule's latest firings (and skipped slots), newest first."""
        self.get(name)
        return self._store().fires(name, limit)

    def status(self, name: str) -> ScheduleStatus:
        """Status of one schedule.

        Raises:
            NotFoundError: no such schedule.
        """
        schedule = self.get(name)
        store = self._store()
        state = store.state(name)
        paused = state.get("paused") == "1"
        last_slot = int(state["last_slot_ms"]) if "last_slot_ms" in state else None
        last_task_id = state.get("last_task_id")
        record = self._records().get(last_task_id) if last_task_id else None
        now = store.now_ms()
        return ScheduleStatus(
            name=schedule.name,
            task=schedule.task,
            schedule=schedule.description,
            queue=schedule.queue or self._queue_for(schedule.task),
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
        return self._store().last_runs(self.names())

    def leader(self) -> Leader | None:
        """Who holds the scheduler lease now (None: no scheduler leads)."""
        return self._store().leader()
