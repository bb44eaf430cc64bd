"""An app with message signing on: the key that signs first, an older one that still verifies."""

from __future__ import annotations

from taskplane import Taskplane

tp = Taskplane("signed-tests", signing_key="new-key,old-key")


@tp.task(name="s.add")
def add(a: int, b: int) -> int:
    return a + b
