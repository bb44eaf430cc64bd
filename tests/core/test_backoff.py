"""The doubling pause a full server's refusals wait with (fetch and consumer restarts)."""

from __future__ import annotations

import time

from taskplane.core.backoff import Backoff


def test_a_backoff_doubles_from_least_to_most_and_starts_over_when_reset() -> None:
    backoff = Backoff(0.25, 2.0)
    assert not backoff.waiting and backoff.wait == 0
    assert [backoff.step() for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert backoff.waiting and backoff.until > time.monotonic()
    assert backoff.reset() is True and not backoff.waiting
    assert backoff.reset() is False  # it was not backing off
    assert backoff.step() == 0.25
