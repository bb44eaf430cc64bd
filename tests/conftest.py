"""Session-wide real server: the same embedded mechanism users get; nothing here stands in for Redis.

It starts in ``pytest_configure`` -- before test modules import their apps, which read
TASKPLANE_REDIS_URL once at construction -- and is stopped by its pid in ``pytest_unconfigure``.
Under pytest-xdist (``make test`` runs two processes) each test process has its own server; the
controlling process, which runs no test, starts none.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import redis

from taskplane.redis.embedded import EmbeddedServer
from taskplane.stores.metric_buffer import flush_all

_server: EmbeddedServer | None = None
_data_dir: tempfile.TemporaryDirectory[str] | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _server, _data_dir
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return  # the xdist controller: its workers start their own servers
    _data_dir = tempfile.TemporaryDirectory(prefix="taskplane-tests-")
    _server = EmbeddedServer(_data_dir.name)
    info = _server.start()
    os.environ["TASKPLANE_REDIS_URL"] = info.url
    os.environ["TASKPLANE_DATA_DIR"] = _data_dir.name


def pytest_unconfigure(config: pytest.Config) -> None:
    if _server is not None:
        flush_all()  # the last test's counts, while the server still answers (atexit would be too late)
        _server.stop()
    if _data_dir is not None:
        _data_dir.cleanup()


@pytest.fixture(scope="session")
def redis_server() -> str:
    """URL of the session's server."""
    return os.environ["TASKPLANE_REDIS_URL"]


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session server, emptied for this test."""
    empty(redis_server)
    return redis_server


def empty(url: str) -> None:
    """Empty the server at ``url`` (after the counts an earlier test's enqueues left in this process's metric
    buffers were written, so they do not land in the next test's server). A fixture that starts a worker
    for several tests calls it before the worker starts: else the worker takes what the last test left."""
    flush_all()
    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()


@pytest.fixture
def repo_root() -> Path:
    """The checkout's root (test apps import from here)."""
    return Path(__file__).resolve().parent.parent


from tests.api_server import api_url  # noqa: E402, F401 - fixture
from tests.workers import start_worker, worker_in_process  # noqa: E402, F401 - fixtures
