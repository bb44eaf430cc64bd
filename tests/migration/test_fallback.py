"""``fallback="inline"`` with the Redis server stopped: ``enqueue``, ``.delay()``, ``apply_async()`` run the task in
this process, loudly logged, and its handle answers ``state``, ``result()`` and ``wait()`` without Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskplane import RedisUnavailableError, Taskplane
from taskplane.redis.embedded import EmbeddedServer


def stopped_server_url(tmp_path: Path) -> str:
    server = EmbeddedServer(tmp_path)
    url = server.start().url
    server.stop()
    return url


def test_every_way_of_queueing_falls_back_inline(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tp = Taskplane("fallback-tests", redis_url=stopped_server_url(tmp_path), fallback="inline")

    @tp.task(name="fb.double")
    def double(n: int) -> int:
        return 2 * n

    @tp.celery.task(name="fb.fail")
    def fail() -> None:
        raise ValueError("broken")

    handle = double.enqueue(21)
    assert (handle.state, handle.result(), handle.wait().state) == ("succeeded", 42, "succeeded")
    assert handle.record().result() == 42
    assert double.delay(4).get() == 8
    assert double.apply_async((5,)).get() == 10
    failed = tp.enqueue("fb.fail")
    assert failed.state == "dead" and failed.wait().fields["error_type"] == "ValueError"
    inline_logs = [r for r in caplog.records if "INLINE" in r.getMessage() and r.levelname == "ERROR"]
    assert len(inline_logs) == 4 and all("fallback='inline'" in r.getMessage() for r in inline_logs)


def test_without_the_fallback_delay_is_a_one_line_error(tmp_path: Path) -> None:
    tp = Taskplane("fallback-tests", redis_url=stopped_server_url(tmp_path))

    @tp.task(name="fb.noop")
    def noop() -> None: ...

    with pytest.raises(RedisUnavailableError) as caught:
        noop.delay()
    assert "\n" not in str(caught.value) and "Redis" in str(caught.value)
