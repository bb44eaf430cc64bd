"""Paging cursors: the (score, id) position just after the last item of a page, as ``<score>:<id>`` text
(so the published schema can state its shape: :data:`CURSOR_PATTERN`)."""

from __future__ import annotations

import re

from taskplane.core.errors import InvalidRequestError

#: Every string of this shape is a cursor (a page after that position), and no other string is.
CURSOR_PATTERN = r"^-?[0-9]{1,18}:[\s\S]+$"
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(score: int, task_id: str) -> str:
    """A paging cursor for the position just after (score, task_id)."""
    return f"{score}:{task_id}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The (score, task_id) inside a cursor from :func:`encode_cursor`.

    Raises:
        InvalidRequestError: not such a cursor.
    """
    if not _CURSOR.match(cursor):
        raise InvalidRequestError(f"bad cursor {cursor[:40]!r}: pass back a next_cursor from a previous page")
    score, task_id = cursor.split(":", 1)
    return int(score), task_id
