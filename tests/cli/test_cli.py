"""The CLI as users run it: a real subprocess, exit codes 0/1/2, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_output import error_lines


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskplane", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_help_lists_every_command() -> None:
    out = run("--help").stdout
    commands = ("worker", "enqueue", "tasks", "queues", "workers", "demo", "redis", "task", "dlq", "api", "dev")
    for command in (*commands, "scheduler", "schedules", "metrics", "flower", "check"):
        assert command in out


def test_enqueue_show_and_list_through_the_cli(redis_url: str) -> None:
    enqueued = run("enqueue", "t.add", "-A", "tests.apps.core_app:tp", "--args", "[1, 2]", "--json")
    assert enqueued.returncode == 0, enqueued.stderr
    task_id = json.loads(enqueued.stdout)["id"]
    shown = json.loads(run("task", "show", task_id, "-A", "tests.apps.core_app:tp", "--json").stdout)
    assert shown["state"] == "queued" and shown["args"] == [1, 2]
    listed = json.loads(run("tasks", "-A", "tests.apps.core_app:tp", "--json").stdout)
    assert [t["id"] for t in listed["tasks"]] == [task_id] and listed["next_cursor"] is None
    queues = json.loads(run("queues", "-A", "tests.apps.core_app:tp", "--json").stdout)
    assert {q["queue"]: q["ready"] for q in queues}["normal"] == 1


@pytest.mark.parametrize(
    "args",
    [
        ("enqueue", "t.add", "-A", "tests.apps.core_app:tp", "--args", "{not json"),
        ("enqueue", "t.add", "-A", "tests.apps.core_app:tp", "--kwargs", "[1]"),
        ("dlq", "requeue", "-A", "tests.apps.core_app:tp"),
        ("tasks", "-A", "tests.apps.core_app:tp", "--state", "exploded"),
        ("tasks", "-A", "tests.apps.core_app:tp", "--cursor", "not-a-cursor"),
        ("dlq", "purge", "x", "--task", "t.add", "-A", "tests.apps.core_app:tp"),
        ("worker", "--concurrency", "0"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], redis_url: str) -> None:
    assert run(*args).returncode == 2


@pytest.mark.parametrize(
    "args",
    [("schedules", "pause", "nightly-index"), ("schedules",), ("enqueue", "t.add"), ("worker",), ("scheduler",)],
)
def test_a_command_that_needs_the_app_says_how_to_give_it(args: tuple[str, ...], redis_url: str) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "TASKPLANE_APP"}
    result = run(*args, env=env)
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        "error: this command needs the app: give it with -A module:attr (or set TASKPLANE_APP=module:attr)"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("task", "show", "nope", "-A", "tests.apps.core_app:tp"), "task nope not found"),
        (("enqueue", "t.nope", "-A", "tests.apps.core_app:tp"), "unknown task 't.nope'"),
        (("enqueue", "t.add", "-A", "tests.apps.core_app:tp", "--args", "[1]"), "bad arguments for t.add"),
        (("dlq", "show", "nope", "-A", "tests.apps.core_app:tp"), "dead letter nope not found"),
        (("task", "result", "nope", "-A", "tests.apps.core_app:tp"), "task nope not found"),
        (("queues", "-A", "no_such_module"), "cannot import app module"),
    ],
)
def test_failures_exit_1_with_one_line(args: tuple[str, ...], message: str, redis_url: str) -> None:
    result = run(*args)
    assert result.returncode == 1
    assert message in result.stderr and len(error_lines(result.stderr)) == 1, result.stderr


def test_redis_down_is_one_line_exit_1(redis_url: str) -> None:
    import os

    env = {**os.environ, "TASKPLANE_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = run("queues", env=env)
    assert result.returncode == 1 and "unreachable" in result.stderr
    assert len(error_lines(result.stderr)) == 1


def test_redis_start_status_url_stop(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "TASKPLANE_DATA_DIR": str(tmp_path)}
    assert run("redis", "status", env=env).returncode == 1
    started = run("redis", "start", "--json", env=env)
    assert started.returncode == 0, started.stderr
    try:
        assert run("redis", "status", env=env).returncode == 0
        url = run("redis", "url", env=env).stdout.strip()
        assert url.startswith("redis://:") and "@127.0.0.1:" in url
    finally:
        assert run("redis", "stop", env=env).returncode == 0
    assert run("redis", "status", env=env).returncode == 1


def test_api_key_create_ls_revoke_through_the_cli(redis_url: str) -> None:
    created = run("api-key", "create", "--name", "ci", "--scope", "read", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["token"].startswith(f"tpk_{key['id']}_") and key["scopes"] == ["read"]
    listed = json.loads(run("api-key", "ls", "--json").stdout)
    assert [(k["id"], k["name"]) for k in listed] == [(key["id"], "ci")] and "token" not in listed[0]
    assert run("api-key", "revoke", key["id"]).returncode == 0
    gone = run("api-key", "revoke", key["id"])
    assert gone.returncode == 1 and f"API key {key['id']} not found" in gone.stderr
    assert run("api-key", "create", "--name", "ci", "--scope", "root").returncode == 2


def test_check_answers_for_container_probes(redis_url: str) -> None:
    import os
    import socket

    from taskplane.stack import free_port

    assert run("check", "-A", "tests.apps.core_app:tp").returncode == 0
    missing = run("check", "-A", "tests.apps.core_app:tp", "--worker", "nobody@nowhere")
    assert missing.returncode == 1
    assert "worker 'nobody@nowhere' sent no heartbeat" in missing.stderr
    down = run("check", env={**os.environ, "TASKPLANE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert down.returncode == 1 and "unreachable" in down.stderr and len(error_lines(down.stderr)) == 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = run("metrics", "-A", "tests.apps.core_app:tp", "--port", str(taken.getsockname()[1]))
    assert busy.returncode == 1 and "cannot listen on 127.0.0.1" in busy.stderr


def test_the_embedded_server_keeps_its_port_across_stop_and_start_with_clients_connected(tmp_path: Path) -> None:
    import os

    import redis

    env = {**os.environ, "TASKPLANE_DATA_DIR": str(tmp_path)}
    assert run("redis", "start", env=env).returncode == 0
    try:
        url = run("redis", "url", env=env).stdout.strip()
        clients = [redis.Redis.from_url(url) for _ in range(5)]
        for client in clients:
            client.ping()  # connections the stop leaves in TIME-WAIT on the server's port
        assert run("redis", "stop", env=env).returncode == 0
        assert run("redis", "start", env=env).returncode == 0
        assert run("redis", "url", env=env).stdout.strip() == url
        assert all(client.ping() for client in clients)  # and the clients reconnect to it
    finally:
        run("redis", "stop", env=env)


def test_a_worker_stopped_by_an_unrecoverable_error_exits_non_zero_with_one_line(redis_url: str) -> None:
    result = run("worker", "-A", "tests.apps.boom_app:tp", "--concurrency", "1")
    assert result.returncode == 1
    last = error_lines(result.stderr)[-1]
    assert last.startswith("error: the worker stopped with exit code 1"), result.stderr[-2000:]
