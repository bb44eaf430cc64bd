"""A daemon thread that calls a function every few seconds and survives its errors."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("taskplane.worker")


class Periodic(threading.Thread):
    """Calls ``action`` every ``interval`` seconds until stopped; a failing call is logged, not fatal."""

    def __init__(self, name: str, interval: float, action: Callable[[], object]) -> None:
        super().__init__(name=f"taskplane-{name}", daemon=True)
        self.interval = interval
        self.action = action
        self._stopped = threading.Event()

    def run(self) -> None:
        """Loop until :meth:`stop`."""
        failures = 0
        while not self._stopped.is_set():
            try:
                self.action()
                failures = 0
            except Exception as exc:
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning("%s failed (%d in a row): %s", self.name, failures, exc)
            self._stopped.wait(self.interval)

    def stop(self) -> None:
        """Ask the loop to end after the current call."""
        self._stopped.set()
