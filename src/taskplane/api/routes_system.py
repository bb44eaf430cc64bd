"""``/health``, ``/ready``, ``/queues``, ``/workers`` and ``/history``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from taskplane.api.auth import Tp, require
from taskplane.api.routes_tasks import ERRORS
from taskplane.api.schemas import HealthOut, QueueOut, ReadyOut, WorkerOut
from taskplane.api.schemas_ops import HistoryOut, MinuteOut

router = APIRouter(tags=["system"])


@router.get("/health", response_model=HealthOut)
async def health() -> HealthOut:
    """The API process is alive (no key needed; does not touch Redis)."""
    return HealthOut(status="ok")


@router.get("/ready", response_model=ReadyOut, responses=ERRORS, dependencies=[Depends(require("read"))])
def ready(tp: Tp) -> ReadyOut:
    """Redis is reachable and a primary (else 503); reports how many live workers consume each queue."""
    tp.ping()
    return ReadyOut(status="ready", workers_per_queue=tp.workers.per_queue())


@router.get("/queues", response_model=list[QueueOut], responses=ERRORS, dependencies=[Depends(require("read"))])
def queues(tp: Tp) -> list[QueueOut]:
    """Ready, delayed, running and dead counts per queue, highest tier first."""
    return [QueueOut(**stats) for stats in tp.queues.stats()]


@router.get("/workers", response_model=list[WorkerOut], responses=ERRORS, dependencies=[Depends(require("read"))])
def workers(tp: Tp) -> list[WorkerOut]:
    """Live workers with their queues, concurrency, active and processed counts and last heartbeat."""
    return [WorkerOut(**worker) for worker in tp.workers.live()]


@router.get("/history", response_model=HistoryOut, responses=ERRORS, dependencies=[Depends(require("read"))])
def history(tp: Tp, minutes: Annotated[int, Query(ge=1, le=120)] = 60) -> HistoryOut:
    """Tasks finished per minute (succeeded, failed, retried, rejected, revoked) over the last ``minutes``,
    oldest first; kept in Redis for two hours."""
    return HistoryOut(minutes=[MinuteOut(**row) for row in tp.stores.metrics.history(minutes)])
