"""Time and JSON helpers every layer uses."""

from __future__ import annotations

import json
import time
from typing import Any

#: Longest JSON text kept for one value in a task record (arguments, result).
MAX_VALUE_CHARS = 4096


def now_ms() -> int:
    """Wall-clock time in whole milliseconds."""
    return int(time.time() * 1000)


def compact_json(value: Any, limit: int = MAX_VALUE_CHARS) -> tuple[str, bool]:
    """JSON text of ``value`` cut to ``limit`` characters; the flag says whether it was cut."""
    text = json.dumps(value, default=repr, separators=(",", ":"))
    if len(text) <= limit:
        return text, False
    return text[:limit], True
