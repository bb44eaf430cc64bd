"""An app whose worker cannot start: a bootstep raises, which Celery calls an unrecoverable error."""

from __future__ import annotations

from typing import Any

from celery import bootsteps

from taskplane import Taskplane

tp = Taskplane("boom-tests")


class Boom(bootsteps.StartStopStep):
    requires = ("celery.worker.components:Pool",)

    def start(self, worker: Any) -> None:
        raise RuntimeError("boom at start")


tp.celery.steps["worker"].add(Boom)
