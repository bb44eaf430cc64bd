"""The app against the real session server (no worker needed)."""

import socket
import time

import pytest

from taskplane import (
    ConfigurationError,
    PayloadTooLargeError,
    RedisUnavailableError,
    TaskArgumentsError,
    Taskplane,
    UnknownTaskError,
)
from taskplane.stores.dead_letters import DeadFilter, DeadLetter


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unknown_task_option_names_the_valid_ones():
    tp = Taskplane("t")
    with pytest.raises(ConfigurationError, match=r"'retries'.*did you mean 'retry'.*valid options: name, queue"):
        tp.task(retries=3)(lambda: None)


def test_a_task_in_an_undeclared_queue_is_rejected():
    with pytest.raises(ConfigurationError, match="unknown queue 'bulk'"):
        Taskplane("t").task(queue="bulk")(lambda: None)


def test_undeclared_tasks_route_to_normal(redis_url):
    tp = Taskplane("t")

    @tp.task
    def plain() -> None: ...

    handle = plain.enqueue()
    assert handle.record().queue == "normal" and handle.state == "queued"
    assert tp.storage.client.llen("normal") == 1


def test_unknown_task_and_bad_arguments_are_refused_before_anything_is_queued(redis_url):
    tp = Taskplane("t")

    @tp.task(name="x.sum")
    def total(a: int, b: int) -> int:
        return a + b

    with pytest.raises(UnknownTaskError, match=r"known tasks: x\.sum"):
        tp.enqueue("x.nope")
    with pytest.raises(TaskArgumentsError, match="missing a required argument: 'b'"):
        tp.enqueue("x.sum", [1])
    assert tp.storage.client.llen("normal") == 0 and tp.tasks().records == []


def test_an_oversized_payload_is_refused_and_leaves_no_record(redis_url):
    tp = Taskplane("t", max_payload_bytes=1000)

    @tp.task(name="x.big")
    def big(blob: str) -> None: ...

    with pytest.raises(PayloadTooLargeError, match="limit is 1000"):
        big.enqueue("x" * 5000)
    assert tp.tasks().records == [] and tp.storage.client.llen("normal") == 0


def test_redis_down_is_a_clear_error_by_default():
    tp = Taskplane("t", redis_url=f"redis://127.0.0.1:{_closed_port()}/0")

    @tp.task(name="x.one")
    def one() -> int:
        return 1

    with pytest.raises(RedisUnavailableError, match=r"Redis at redis://127.0.0.1:\d+/0 is unreachable"):
        one.enqueue()


def test_inline_fallback_runs_the_task_in_process_and_says_so(caplog):
    tp = Taskplane("t", redis_url=f"redis://127.0.0.1:{_closed_port()}/0", fallback="inline")

    @tp.task(name="x.double")
    def double(n: int) -> int:
        return 2 * n

    handle = double.enqueue(21)
    assert handle.result() == 42
    assert any("INLINE" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


def test_unknown_ids_are_not_found_not_pending(redis_url):
    tp = Taskplane("t")
    assert tp.status("never-existed") is None


def test_records_list_newest_first_filtered_and_paged(redis_url):
    tp = Taskplane("t", queues={"reports": "low"})

    @tp.task(name="x.a")
    def a(i: int) -> None: ...

    @tp.task(name="x.b", queue="reports")
    def b(i: int) -> None: ...

    ids = []
    for task, i in [(a, i) for i in range(5)] + [(b, i) for i in range(3)]:
        ids.append(task.enqueue(i).id)
        time.sleep(0.002)  # records are ordered by creation time in ms; ties are ordered by id
    first = tp.tasks(limit=3)
    assert [r.id for r in first.records] == ids[::-1][:3]
    second = tp.tasks(limit=3, cursor=first.next_cursor)
    assert [r.id for r in second.records] == ids[::-1][3:6]
    page = tp.tasks(name="x.a", limit=2)
    assert [r.id for r in page.records] == ids[:5][::-1][:2]
    assert [r.id for r in tp.tasks(name="x.a", limit=10, cursor=page.next_cursor).records] == ids[:5][::-1][2:]
    assert {r.name for r in tp.tasks(queue="reports").records} == {"x.b"}
    assert len(tp.tasks(state="queued", limit=100).records) == 8 and tp.tasks(state="failed").records == []


def test_record_paging_cursor_holds_across_equal_timestamps_and_new_tasks(redis_url):
    # Given 30 records created in the same few milliseconds (many equal scores)
    tp = Taskplane("t")

    @tp.task(name="x.paged")
    def a(i: int) -> None: ...

    ids = {a.enqueue(i).id for i in range(30)}
    # When paging 7 at a time while new tasks keep arriving
    seen: list[str] = []
    cursor = None
    while True:
        page = tp.tasks(limit=7, cursor=cursor)
        seen += [r.id for r in page.records]
        a.enqueue(99)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # Then every original task is seen exactly once and nothing newer than the first page appears
    assert len(seen) == len(set(seen)) and set(seen) == ids


def test_records_filter_by_creation_time_and_reject_bad_cursor(redis_url):
    from taskplane import InvalidRequestError

    tp = Taskplane("t")

    @tp.task(name="x.timed")
    def a(i: int) -> None: ...

    old = a.enqueue(1).id
    time.sleep(0.05)
    middle = int(time.time() * 1000)
    time.sleep(0.05)
    new = a.enqueue(2).id
    assert [r.id for r in tp.tasks(since_ms=middle).records] == [new]
    assert [r.id for r in tp.tasks(until_ms=middle).records] == [old]
    with pytest.raises(InvalidRequestError, match="bad cursor"):
        tp.tasks(cursor="garbage")
    with pytest.raises(InvalidRequestError, match="unknown state"):
        tp.tasks(state="sleeping")


def test_dead_letter_queue_is_capped_oldest_dropped_and_counted(redis_url):
    tp = Taskplane("t", dead_letter_cap=3)
    for index in range(5):
        tp.dead_letters.add(
            DeadLetter(id=f"d{index}", name="x", queue="normal", reason="failed", last_failure_ms=1000 + index)
        )
    assert [d.id for d in tp.dead_letters.find()] == ["d4", "d3", "d2"]
    assert tp.dead_letters.dropped("normal") == 2
    assert [d.id for d in tp.dead_letters.find(DeadFilter(task="x"), limit=1, offset=1)] == ["d3"]
    assert tp.dead_letters.purge(ids=["d3"]) == 1
    assert [d.id for d in tp.dead_letters.find()] == ["d4", "d2"]


def test_cancel_of_a_queued_task_marks_it_and_an_unknown_id_is_not_found(redis_url):
    from taskplane import NotFoundError

    tp = Taskplane("t")

    @tp.task(name="x.c")
    def c() -> None: ...

    handle = c.enqueue()
    assert tp.cancel(handle.id) == "cancelled"
    with pytest.raises(NotFoundError):
        tp.cancel("nope")


def test_queues_declared_after_first_use_are_an_error(redis_url):
    tp = Taskplane("t")
    tp.queues.stats()
    tp.celery.conf.broker_url  # noqa: B018 - first read of the configuration
    with pytest.raises(ConfigurationError, match="before the app is used"):
        tp.add_queue("late", "low")


def test_an_idempotency_key_is_freed_when_publishing_fails_and_holds_after_success(redis_url):
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
    assert len(tp.tasks().records) == 1 and tp.storage.client.llen("normal") == 1
    with pytest.raises(IdempotencyConflictError, match="different call"):
        tp.enqueue("x.idem", ["other"], idempotency_key="k")


def test_api_keys_scopes_digest_and_revocation(redis_url):
    from taskplane import InvalidRequestError, NotFoundError

    tp = Taskplane("t")
    key, token = tp.api_keys.create("svc", ["enqueue", "read", "read"])
    assert key.scopes == ["read", "enqueue"] and token.startswith(f"tpk_{key.id}_")
    found = tp.api_keys.authenticate(token)
    assert found is not None and found.id == key.id and found.allows("read") and not found.allows("admin")
    assert tp.api_keys.authenticate(token + "x") is None and tp.api_keys.authenticate("garbage") is None
    with pytest.raises(InvalidRequestError, match="scopes must be"):
        tp.api_keys.create("svc", ["root"])
    replaced, new_token = tp.api_keys.create("svc", ["admin"], replace=True)
    assert tp.api_keys.authenticate(token) is None and [k.id for k in tp.api_keys.find()] == [replaced.id]
    tp.api_keys.revoke(replaced.id)
    assert tp.api_keys.authenticate(new_token) is None
    with pytest.raises(NotFoundError):
        tp.api_keys.revoke(replaced.id)


def test_an_apps_tasks_stay_its_own_when_another_app_is_created():
    first = Taskplane("first-app")

    @first.task(name="only.first")
    def only_first() -> None: ...

    second = Taskplane("second-app")
    second.celery.finalize()
    assert "only.first" in first.celery.tasks
    assert "only.first" not in second.celery.tasks


def test_importing_an_app_with_tasks_and_schedules_touches_no_server(tmp_path, repo_root):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TASKPLANE_REDIS_URL", "REDIS_URL")}
    env["TASKPLANE_DATA_DIR"] = str(tmp_path)
    code = "import tests.apps.ops_app, taskplane_demo.tasks as d; print(len(d.tp.schedules))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4"
    assert list(tmp_path.iterdir()) == []  # no embedded server was started under the data directory
