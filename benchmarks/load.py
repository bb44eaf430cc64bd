"""One producer process: ``python -m benchmarks.load SYSTEM MODE COUNT`` enqueues COUNT no-op tasks and
prints ``{"seconds": ...}`` (the time of the enqueue loop alone, after imports and a warm-up).

SYSTEM is taskplane, celery or dramatiq; MODE is ``single`` (one call per task, as an application does)
``batch`` (taskplane's ``enqueue_many``) or ``delayed`` (one hour countdown, batched where the system can).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

WARM_UP = 50


def taskplane_producer(mode: str) -> Callable[[range], None]:
    from benchmarks.bench_app import noop, tp

    if mode == "single":

        def single(indexes: range) -> None:
            for i in indexes:
                noop.enqueue(i)

        return single
    countdown = 3600.0 if mode == "delayed" else None

    def batch(indexes: range) -> None:
        for start in range(indexes.start, indexes.stop, 1000):
            chunk = range(start, min(start + 1000, indexes.stop))
            tp.enqueue_many("bench.noop", [[i] for i in chunk], countdown=countdown)

    return batch


def celery_producer(mode: str) -> Callable[[range], None]:
    from benchmarks.plain_celery_app import noop

    def send(indexes: range) -> None:
        for i in indexes:
            if mode == "delayed":
                noop.apply_async((i,), countdown=3600)
            else:
                noop.delay(i)

    return send


def dramatiq_producer(mode: str) -> Callable[[range], None]:
    from benchmarks.dramatiq_app import noop

    def send(indexes: range) -> None:
        for i in indexes:
            if mode == "delayed":
                noop.send_with_options(args=(i,), delay=3_600_000)
            else:
                noop.send(i)

    return send


PRODUCERS = {"taskplane": taskplane_producer, "celery": celery_producer, "dramatiq": dramatiq_producer}


def producer(system: str, mode: str) -> Callable[[range], None]:
    """A function that enqueues one no-op task per index of a range."""
    if system not in PRODUCERS:
        raise SystemExit(f"unknown system {system!r}")
    if mode == "batch" and system != "taskplane":
        raise SystemExit(f"{system} has no batch enqueue here")
    return PRODUCERS[system](mode)


def main() -> int:
    system, mode, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    send = producer(system, mode)
    send(range(-WARM_UP, 0))
    started = time.perf_counter()
    send(range(count))
    print(json.dumps({"seconds": time.perf_counter() - started}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
