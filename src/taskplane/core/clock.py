"""Time and JSON helpers every layer uses."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

#: Longest JSON text kept for one value in a task record (arguments, result).
MAX_VALUE_CHARS = 4096
#: ``json.dumps(value, default=repr, separators=(",", ":"))`` without building an encoder per call.
_COMPACT = json.JSONEncoder(default=repr, separators=(",", ":"))


def now_ms() -> int:
    """Wall-clock time in whole milliseconds."""
    return int(time.time() * 1000)


def due_ms(countdown: float | None, eta: datetime | None) -> int | None:
    """When a call with this ``countdown`` (seconds) or ``eta`` is due, in epoch ms; None for now."""
    if eta is not None:
        return int(eta.timestamp() * 1000)
    return now_ms() + int(countdown * 1000) if countdown else None


def compact_json(value: Any, limit: int = MAX_VALUE_CHARS) -> tuple[str, bool]:
    """JSON text of ``value`` cut to ``limit`` characters; the flag says whether it was cut."""
    text = _COMPACT.encode(value)
    if len(text) <= limit:
        return text, False
    return text[:limit], True
