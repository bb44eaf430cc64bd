"""The private names of Celery, kombu, billiard and redis-py that taskplane relies on (``taskplane.compat``):
one test per name against the installed versions, each failing with a message that names the private name
and what taskplane needs it for; and a check that no other module reaches a foreign private name."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import warnings
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import billiard.pool
import pytest
import redis
from kombu import Connection
from kombu.transport.virtual import Message
from packaging.version import Version

import taskplane
from taskplane import compat
from taskplane.compat import OVERRIDDEN, PrivateName

PACKAGE = Path(taskplane.__file__).parent
#: Documented names that start with an underscore (a named tuple's API).
DOCUMENTED = {"_replace", "_asdict", "_fields", "_make"}


def _owner(entry: PrivateName) -> type:
    module, _, name = entry.owner.partition(":")
    owner: type = getattr(importlib.import_module(module), name)
    return owner


def _present_in_this_version(entry: PrivateName) -> bool:
    if entry.since is None:
        return True
    distribution, first = entry.since
    return Version(version(distribution)) >= Version(first)


@pytest.mark.parametrize("entry", OVERRIDDEN, ids=lambda entry: f"{entry.owner}.{entry.name}")
def test_an_overridden_private_name_is_still_there(entry: PrivateName) -> None:
    owner = _owner(entry)
    if not _present_in_this_version(entry):
        assert not hasattr(owner, entry.name), f"{entry.owner}.{entry.name} arrived before {entry.since}: update since"
        return
    assert hasattr(owner, entry.name), (
        f"{entry.owner} no longer has {entry.name!r} (taskplane overrides it: {entry.why}); "
        "this release changed a private name taskplane relies on"
    )


@pytest.fixture
def channel(redis_url: str) -> Iterator[Any]:
    from tests.apps.core_app import tp

    with tp.celery.connection_for_write() as connection:
        yield connection.default_channel


def test_consumed_queues_keep_the_order_they_were_consumed_in(channel: Any) -> None:
    # Given queues consumed highest tier first, as the worker's consumer does (names whose hashes order a set
    # differently from their insertion order in most processes)
    names = ["critical", "high", "normal", "low", "reports", "a", "b", "c", "zz"]
    for name in names:
        channel.basic_consume(name, no_ack=False, callback=lambda message: None, consumer_tag=f"tag-{name}")
    # Then they come in that order, whatever the order of kombu's public active_queues
    assert compat.consumed_queues(channel) == names, "kombu's Channel._active_queues changed"


def test_poll_bookkeeping_is_what_kombus_poller_reads(channel: Any) -> None:
    connection = compat.pool_connection(channel.pool)  # as kombu's poller gives the channel's client one
    compat.poll_sent(channel, connection)
    assert compat.poll_in_flight(channel) and channel._in_poll is connection, "kombu's Channel._in_poll changed"
    compat.poll_done(channel)
    assert not compat.poll_in_flight(channel)
    assert compat.poll_timeout(channel) > 0
    channel.pool.release(connection)


def test_the_poller_helpers_watch_and_unwatch_a_sockets_owner(channel: Any) -> None:
    from kombu.transport.redis import MultiChannelPoller

    cycle: Any = MultiChannelPoller()
    cycle.add(channel)

    class Owner:  # what a cluster lane is to the poller: something with a connection
        connection = compat.pool_connection(channel.pool)

    owner = Owner()
    try:
        compat.poller_watch(cycle, channel, owner, "lane:q")
        compat.poller_watch(cycle, channel, owner, "lane:q")  # once
        fileno = owner.connection._sock.fileno()
        assert compat.poller_owner(cycle, fileno) == (channel, "lane:q"), "kombu's _register/_fd_to_chan changed"
        compat.poller_unwatch(cycle, channel, owner, "lane:q")
        assert compat.poller_owner(cycle, fileno) is None
        assert (channel, owner, "lane:q") not in cycle._chan_to_sock, "kombu's MultiChannelPoller._chan_to_sock changed"
    finally:
        channel.pool.release(owner.connection)
        cycle.close()


def test_deliver_hands_a_message_to_the_transport(channel: Any) -> None:
    deliver = getattr(channel.connection, "_deliver", None)
    assert callable(deliver), "kombu's Transport._deliver is gone (the fetch hands messages to it)"
    assert list(inspect.signature(deliver).parameters)[:2] == ["message", "queue"]


def test_message_priority_reads_a_messages_priority(channel: Any) -> None:
    assert compat.message_priority(channel, {"properties": {"priority": 9}}) == 9
    assert compat.message_priority(channel, {"properties": {}}) == 0


def test_new_client_is_a_client_on_the_channels_pool(channel: Any) -> None:
    client = compat.new_client(channel)
    assert isinstance(client, redis.Redis) and client.connection_pool is channel.pool
    assert client.ping()


def test_delivered_is_the_qos_books(channel: Any) -> None:
    assert hasattr(compat.delivered(channel.qos), "items"), "kombu's QoS._delivered changed"


def test_raw_payload_is_what_the_message_was_built_from(channel: Any) -> None:
    payload = {"body": "e30=", "properties": {"delivery_tag": "t1", "delivery_info": {}}, "headers": {}}
    assert compat.raw_payload(Message(payload, channel=channel)) is payload, "kombu's Message._raw changed"


def test_exec_options_are_a_tasks_publish_options() -> None:
    from tests.apps.core_app import add

    options = compat.exec_options(add)
    assert isinstance(options, dict) and "priority" in options, "Celery's Task._get_exec_options changed"


def test_result_meta_is_what_the_backend_stores(redis_url: str) -> None:
    from tests.apps.core_app import tp

    meta = compat.result_meta(tp.celery.backend, 5, "SUCCESS", None)
    assert meta["status"] == "SUCCESS" and meta["result"] == 5, "Celery's Backend._get_result_meta changed"


def test_pending_config_is_read_without_configuring_the_app() -> None:
    from taskplane import Taskplane

    fresh: Any = Taskplane("compat-probe", redis_url="redis://127.0.0.1:1/0")
    fresh.celery.conf.update(imports=["x.y"])  # Celery keeps it pending
    assert compat.pending_config(fresh.celery)["imports"] == ["x.y"], "Celery's Celery._preconf changed"
    assert not fresh.celery.configured


def test_declared_tasks_is_read_without_finalizing() -> None:
    from taskplane import Taskplane

    fresh: Any = Taskplane("compat-probe", redis_url="redis://127.0.0.1:1/0")
    assert hasattr(compat.declared_tasks(fresh.celery), "register"), "Celery's Celery._tasks changed"
    assert not fresh.celery.finalized


def test_pool_processes_are_billiards() -> None:
    pool = billiard.pool.Pool(processes=1)
    try:
        processes = compat.pool_processes(pool)
        assert len(processes) == 1 and processes[0].pid, "billiard's Pool._pool changed"
    finally:
        pool.terminate()
        pool.join()


def test_pool_connection_takes_a_connection_without_a_warning(redis_url: str) -> None:
    pool = redis.ConnectionPool.from_url(redis_url)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        connection = compat.pool_connection(pool)
    try:
        connection.send_command("PING")
        assert connection.read_response() in (b"PONG", "PONG")
    finally:
        pool.release(connection)
        pool.disconnect()


# -- nothing else reaches a foreign private name ----------------------------------------------------------


def _own_names() -> set[str]:
    """Every name taskplane itself defines (functions, methods, attributes it assigns)."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, (ast.AnnAssign, ast.Assign)):
                targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
                names.update(target.id for target in targets if isinstance(target, ast.Name))
            elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                if isinstance(node.slice.value, str):  # self.__dict__["_taskplane_x"] = ...
                    names.add(node.slice.value)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.rpartition(".")[2])
    return names


def test_only_the_compat_module_reaches_a_foreign_private_name() -> None:
    own = _own_names() | DOCUMENTED
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            attr: object = node.attr if isinstance(node, ast.Attribute) else None
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr", "setattr"):
                argument = node.args[1] if len(node.args) > 1 else None
                attr = argument.value if isinstance(argument, ast.Constant) else None
            if isinstance(attr, str) and attr.startswith("_") and not attr.startswith("__") and attr not in own:
                found.append(f"{path.relative_to(PACKAGE)}:{getattr(node, 'lineno', '?')} {attr}")
    assert not found, f"foreign private names reached outside taskplane/compat.py: {found}"


def test_every_private_override_is_listed() -> None:
    listed = {(entry.owner, entry.name) for entry in OVERRIDDEN}
    missing = []
    for module_info in pkgutil.walk_packages(taskplane.__path__, "taskplane."):
        if module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                continue
            foreign = [base for base in cls.__mro__ if not base.__module__.startswith(("taskplane", "builtins"))]
            ours = [base for base in cls.__mro__ if base.__module__.startswith("taskplane")]
            for base in ours:
                for name in base.__dict__:
                    if not name.startswith("_") or name.endswith("_") or name in ("_abc_impl", "_is_protocol"):
                        continue  # public, dunder or enum's sunder names, and what ABCMeta and Protocol set
                    owners = [other for other in foreign if name in other.__dict__]
                    if owners and (f"{owners[0].__module__}:{owners[0].__qualname__}", name) not in listed:
                        missing.append(f"{cls.__qualname__}.{name} overrides {owners[0].__module__}")
    assert not missing, f"private overrides not listed in taskplane.compat.OVERRIDDEN: {sorted(set(missing))}"


def test_the_compat_module_imports_no_taskplane_module() -> None:
    tree = ast.parse((PACKAGE / "compat.py").read_text())
    imported = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
    assert not [node.module for node in imported if node.module and node.module.startswith("taskplane")]


def test_a_connection_of_the_app_uses_taskplanes_transport(redis_url: str) -> None:
    from tests.apps.core_app import tp

    with tp.celery.connection_for_write() as connection:
        assert isinstance(connection, Connection)
        assert type(connection.default_channel).__module__ == "taskplane.celery.transport"
