"""``/schedules``: list, show, the firing log, pause, resume and run now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from taskplane.api.auth import Tp, require
from taskplane.api.routes_tasks import ERRORS
from taskplane.api.schemas import LeaderOut, ScheduleOut, ScheduleRunOut, SchedulesOut
from taskplane.api.schemas_ops import FireOut, FiresOut

router = APIRouter(tags=["schedules"])
Name = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/schedules", response_model=SchedulesOut, responses=ERRORS, dependencies=[Depends(require("read"))])
def list_schedules(tp: Tp) -> SchedulesOut:
    """Every schedule with its next and last run and the last task's state, and who leads."""
    leader = tp.schedules.leader()
    return SchedulesOut(
        leader=None if leader is None else LeaderOut(**vars(leader)),
        schedules=[ScheduleOut(**status.to_dict()) for status in tp.schedules.statuses()],
    )


@router.get("/schedules/{name}", response_model=ScheduleOut, responses=ERRORS, dependencies=[Depends(require("read"))])
def get_schedule(tp: Tp, name: Name) -> ScheduleOut:
    """One schedule."""
    return ScheduleOut(**tp.schedules.status(name).to_dict())


@router.get(
    "/schedules/{name}/fires", response_model=FiresOut, responses=ERRORS, dependencies=[Depends(require("read"))]
)
def schedule_fires(tp: Tp, name: Name, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> FiresOut:
    """The schedule's firing log, newest first: slots fired, fired late, skipped, and manual runs."""
    return FiresOut(schedule=name, fires=[FireOut(**entry) for entry in tp.schedules.fires(name, limit)])


@router.post(
    "/schedules/{name}/pause", response_model=ScheduleOut, responses=ERRORS, dependencies=[Depends(require("admin"))]
)
def pause_schedule(tp: Tp, name: Name) -> ScheduleOut:
    """Stop firing the schedule until resumed; kept in Redis, so it lasts across restarts."""
    return ScheduleOut(**tp.schedules.pause(name).to_dict())


@router.post(
    "/schedules/{name}/resume", response_model=ScheduleOut, responses=ERRORS, dependencies=[Depends(require("admin"))]
)
def resume_schedule(tp: Tp, name: Name) -> ScheduleOut:
    """Fire the schedule again from its next slot (slots passed while paused are not fired)."""
    return ScheduleOut(**tp.schedules.resume(name).to_dict())


@router.post(
    "/schedules/{name}/run",
    response_model=ScheduleRunOut,
    status_code=202,
    responses=ERRORS,
    dependencies=[Depends(require("enqueue"))],
)
def run_schedule(tp: Tp, name: Name) -> ScheduleRunOut:
    """Fire the schedule's task now, outside its slots (also when paused)."""
    return ScheduleRunOut(schedule=name, task_id=tp.schedules.run(name))
