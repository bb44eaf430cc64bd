"""The prefork pool, with a child process that exits (``max_tasks_per_child``, ``max_memory_per_child``, a
crash) replaced at once rather than up to 5 seconds later.

Celery's pool learns that a child exited when the child's sentinel pipe becomes readable, and then
replaces every child that the kernel has reaped (``waitpid(WNOHANG)``). But the pipe closes as the child
closes its files on the way out, a moment before the kernel makes it reapable: when the parent looks in
that moment, it finds nothing to replace, stops watching the pipe, and the child is replaced by the pool's
5-second timer instead (celery/celery#9588); meanwhile a worker with one process runs nothing. This pool
looks again every few milliseconds until the child is replaced; it never blocks its event loop.
"""

from __future__ import annotations

from typing import Any

from celery.concurrency import asynpool, prefork

from taskplane.compat import pool_processes

#: How long after a child's exit was seen the pool looks again if it could not replace it yet (s).
RECHECK_INTERVAL = 0.005
#: How many times it looks again; the pool's own 5-second timer catches anything later still.
RECHECKS = 200


class AsynPool(asynpool.AsynPool):
    """Celery's prefork pool, replacing an exited child as soon as the kernel lets it be reaped."""

    def _event_process_exit(self, hub: Any, proc: Any) -> None:
        parent: Any = super()  # billiard's and Celery's pool internals are not in their type stubs
        parent._event_process_exit(hub, proc)
        if self._waiting(proc):  # seen exiting, not yet reapable: not replaced
            self._recheck(hub, proc, RECHECKS)

    def _waiting(self, proc: Any) -> bool:
        """True while ``proc`` is still among the pool's processes (not yet reaped and replaced)."""
        pool: Any = self
        return proc in pool_processes(pool)

    def _recheck(self, hub: Any, proc: Any, tries: int) -> None:
        def again() -> None:
            if not self._waiting(proc):  # replaced meanwhile (by the 5-second timer, say)
                return
            self.maintain_pool()
            if self._waiting(proc) and tries > 1:
                self._recheck(hub, proc, tries - 1)

        hub.call_later(RECHECK_INTERVAL, again)


class TaskPool(prefork.TaskPool):
    """Celery's prefork task pool on :class:`AsynPool`: the app's ``worker_pool``, which Celery's worker takes
    for ``--pool prefork`` (its default)."""

    Pool = AsynPool
