"""Task ids are random version 4 UUIDs, as Celery's."""

from __future__ import annotations

import uuid

from taskplane.core.ids import new_task_id


def test_a_task_id_is_a_random_version_4_uuid() -> None:
    ids = [new_task_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:100]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
