"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from taskplane import EmbeddedServer


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """An embedded server of its own (the session's must not be killed), stopped by its pid at the end."""
    server = EmbeddedServer(tmp_path / "private")
    server.start()
    yield server
    server.stop()
