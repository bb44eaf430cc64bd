"""A wait that doubles while a condition lasts (a full server refusing writes), from a least to a most."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Backoff:
    """Doubling pauses: the first :meth:`step` waits ``least`` seconds, each next one twice the last, at most
    ``most``; :meth:`reset` starts over."""

    least: float
    most: float
    #: The current pause in seconds (0: not backing off), and the monotonic time it ends.
    wait: float = 0.0
    until: float = 0.0

    def step(self) -> float:
        """The next pause (seconds), which starts now."""
        self.wait = min(max(self.wait * 2, self.least), self.most)
        self.until = time.monotonic() + self.wait
        return self.wait

    def reset(self) -> bool:
        """Start over; True if it was backing off."""
        was = bool(self.wait)
        self.wait = self.until = 0.0
        return was

    @property
    def waiting(self) -> bool:
        """True until the current pause ends."""
        return time.monotonic() < self.until
