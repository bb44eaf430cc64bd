"""Calls a cluster channel (:mod:`taskplane.celery.cluster`) makes off the worker's main loop.

The main loop serves every queue, and a call to a frozen node waits out the socket timeout (10 s): while it
waits, no queue is fetched and no reply is read. So what a channel would otherwise call on a node from the
main loop at times of its own choosing, the lease sweep of a queue and the slot lookup and connect that open
a queue's lane, runs here, in a short-lived thread per call, one at a time per name: a frozen node holds up
the calls that need it, not the other queues.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("taskplane.worker")


class Aside:
    """Runs calls in threads of their own, at most one at a time per name (see the module)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, threading.Thread] = {}

    def run(self, name: str, call: Callable[[], object], wait: float = 0.0) -> bool:
        """Start ``call`` in a daemon thread unless the last call under ``name`` still runs, and wait up to
        ``wait`` seconds for it to end (a call that usually takes a millisecond is then as good as made
        in place, and one held by a frozen node holds the caller ``wait`` at most).

        Returns:
            True if it started, False if the one before still runs (``call`` is dropped: the caller asks
            again later).
        """
        with self._lock:
            running = self._running.get(name)
            if running is not None and running.is_alive():
                return False
            thread = threading.Thread(target=self._call, args=(name, call), name=f"taskplane-{name}", daemon=True)
            self._running[name] = thread
            thread.start()
        thread.join(wait)
        return True

    def _call(self, name: str, call: Callable[[], object]) -> None:
        try:
            call()
        except Exception as exc:  # a thread's error has nowhere else to go: the caller asks again later
            log.warning("%s failed (%s: %s); tried again later", name, type(exc).__name__, exc)
        finally:
            with self._lock:
                if self._running.get(name) is threading.current_thread():
                    del self._running[name]
