"""Enqueueing: checks before anything is queued, payload limit, Redis down, inline fallback, idempotency keys."""

import socket
import time

import pytest

from taskplane import (
    PayloadTooLargeError,
    RedisUnavailableError,
    TaskArgumentsError,
    Taskplane,
    UnknownTaskError,
)
from taskplane.redis.keys import Keys


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unknown_task_and_bad_arguments_are_refused_before_anything_is_queued(redis_url: str) -> None:
    tp = Taskplane("t")

    @tp.task(name="x.sum")
    def total(a: int, b: int) -> int:
        return a + b

    with pytest.raises(UnknownTaskError, match=r"known tasks: (.*, )?x\.sum"):
        tp.enqueue("x.nope")
    with pytest.raises(TaskArgumentsError, match="missing a required argument: 'b'"):
        tp.enqueue("x.sum", [1])
    assert tp.storage.client.llen(Keys().queue("normal")) == 0 and tp.tasks().records == []


def test_an_oversized_payload_is_refused_and_leaves_no_record(redis_url: str) -> None:
    tp = Taskplane("t", max_payload_bytes=1000)

    @tp.task(name="x.big")
    def big(blob: str) -> None: ...

    with pytest.raises(PayloadTooLargeError, match="limit is 1000"):
        big.enqueue("x" * 5000)
    assert tp.tasks().records == [] and tp.storage.client.llen(Keys().queue("normal")) == 0


def test_redis_down_is_a_clear_error_by_default() -> None:
    tp = Taskplane("t", redis_url=f"redis://127.0.0.1:{_closed_port()}/0")

    @tp.task(name="x.one")
    def one() -> int:
        return 1

    started = time.monotonic()
    with pytest.raises(RedisUnavailableError, match=r"Redis at redis://127.0.0.1:\d+/0 is unreachable"):
        one.enqueue()
    assert time.monotonic() - started < 2.0  # docs/concepts.md: about a second of retries, then the error
    started = time.monotonic()
    with pytest.raises(RedisUnavailableError):
        tp.enqueue("x.one")  # by name (the CLI's and the API's way) too
    assert time.monotonic() - started < 2.0


def test_inline_fallback_runs_the_task_in_process_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    tp = Taskplane("t", redis_url=f"redis://127.0.0.1:{_closed_port()}/0", fallback="inline")

    @tp.task(name="x.double")
    def double(n: int) -> int:
        return 2 * n

    handle = double.enqueue(21)
    assert handle.result() == 42
    assert any("INLINE" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


def test_an_idempotency_key_is_freed_when_publishing_fails_and_holds_after_success(redis_url: str) -> None:
    from taskplane import IdempotencyConflictError, PayloadTooLargeError

    tp = Taskplane("t", max_payload_bytes=300)

    @tp.task(name="x.idem")
    def idem(text: str) -> None: ...

    # Given a call that cannot be published (too large)
    with pytest.raises(PayloadTooLargeError):
        tp.enqueue("x.idem", ["y" * 1000], idempotency_key="k")
    # When the same key is used for a call that can
    first = tp.enqueue("x.idem", ["small"], idempotency_key="k")
    again = tp.enqueue("x.idem", ["small"], idempotency_key="k")
    # Then the key was free, and now answers with the one task
    assert not first.existing and again.existing and again.id == first.id
    assert len(tp.tasks().records) == 1 and tp.storage.client.llen(Keys().queue("normal")) == 1
    with pytest.raises(IdempotencyConflictError, match="different call"):
        tp.enqueue("x.idem", ["other"], idempotency_key="k")
