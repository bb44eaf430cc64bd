"""The app the benchmarks enqueue into (configured from TASKPLANE_* like any app)."""

from __future__ import annotations

from taskplane import Taskplane

tp = Taskplane("bench", queues={"reports": "low"})  # reports: the cluster part spreads over three queues


@tp.task(name="bench.noop")
def noop(index: int, payload: str = "") -> int:
    """Does nothing; the benchmark measures enqueueing, not running."""
    return index
