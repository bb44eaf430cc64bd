"""Opaque paging cursors: the (score, id) position just after the last item of a page."""

from __future__ import annotations

import base64

from taskplane.core.errors import InvalidRequestError


def encode_cursor(score: int, task_id: str) -> str:
    """An opaque paging cursor for the position just after (score, task_id)."""
    return base64.urlsafe_b64encode(f"{score}:{task_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The (score, task_id) inside a cursor from :func:`encode_cursor`.

    Raises:
        InvalidRequestError: not such a cursor.
    """
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, task_id = text.split(":", 1)
        if not task_id:
            raise ValueError(text)
        return int(score), task_id
    except ValueError:
        raise InvalidRequestError(f"bad cursor {cursor[:40]!r}: pass back a next_cursor from a previous page") from None
