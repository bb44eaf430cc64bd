"""A SIGTERM to the whole process group (systemd's default, some container runtimes) drains like a
SIGTERM to the main process: pool processes leave the stop to it.

Celery's pool processes die at once on SIGTERM, so a group-wide SIGTERM kills every running task. The
main process and its pool processes share two flags (memory mapped before the pool forks): *draining*,
set when the main process begins its warm shutdown, and *terminating*, set before it ends the pool on
purpose (the shutdown bound ran out, or a cold shutdown was asked for). A pool process that gets SIGTERM
waits a moment for the main process to say which: while it drains, the signal is ignored and the task
finishes; when it terminates, or the main process says nothing (a SIGTERM meant for this process alone),
the process ends as before.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from multiprocessing import RawValue
from typing import Any

log = logging.getLogger("taskplane.worker")

#: How long a pool process waits for the main process to say whether it drains.
DECISION_WAIT = 0.5
_flags: Any = None  # RawValue("i"): bit 1 draining, bit 2 terminating
_main_pid = 0


def share() -> None:
    """Create the shared flags (in the main process, before the pool forks)."""
    global _flags, _main_pid
    _flags = RawValue("i", 0)
    _main_pid = os.getpid()


def draining() -> None:
    """The main process began its warm shutdown."""
    if _flags is not None:
        _flags.value |= 1


def terminating() -> None:
    """The main process is about to end its pool processes on purpose."""
    if _flags is not None:
        _flags.value |= 2


def install_in_pool_process() -> None:
    """In a pool process, before a task runs: handle SIGTERM as described above (once per process; the
    main process itself keeps Celery's handler)."""
    if _flags is not None and os.getpid() != _main_pid and signal.getsignal(signal.SIGTERM) is not _on_sigterm:
        signal.signal(signal.SIGTERM, _on_sigterm)


def exiting() -> None:
    """In a pool process that is exiting by itself (recycled, or told to by the pool): SIGTERM ends it at
    once again. billiard's main process sends one to cut the exit short; waiting for a decision would hold
    up the process's replacement (by :data:`DECISION_WAIT` each time)."""
    if _flags is not None and os.getpid() != _main_pid:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _on_sigterm(signum: int, frame: Any) -> None:
    deadline = time.monotonic() + DECISION_WAIT
    while time.monotonic() < deadline:
        value = _flags.value
        if value & 2:
            break
        if value & 1:
            log.info("SIGTERM while the worker drains: the running task finishes first")
            return
        time.sleep(0.02)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
