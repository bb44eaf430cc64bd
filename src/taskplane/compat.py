"""Every private name of Celery, kombu, billiard and redis-py that taskplane relies on, in one place.

A release may move or change a private name without notice (kombu 5.7 moved two). Each one taskplane
reads, calls or sets goes through a function of this module; each one a taskplane class overrides is
listed in :data:`OVERRIDDEN`. ``tests/test_compat.py`` checks every entry against the installed versions
(a failure names the private name and what taskplane needs it for), and checks that no other module
reaches a foreign private name. Where the declared versions differ, the function here bridges them.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PrivateName:
    """A private name of another library that taskplane overrides: where it lives and why we need it."""

    owner: str  #: "module:Class" of the class that defines it
    name: str
    why: str
    #: The first version of ``owner``'s distribution that has it (None: every declared version).
    since: tuple[str, str] | None = None


#: Private members a taskplane class overrides (kombu calls them; we replace what they do).
OVERRIDDEN: tuple[PrivateName, ...] = (
    PrivateName("kombu.transport.redis:Channel", "_put", "publishes with the record in one script"),
    PrivateName("kombu.transport.redis:Channel", "_q_for_pri", "names a queue's lists under the app's prefix"),
    PrivateName("kombu.transport.redis:Channel", "_get_client", "a plain client: our keys are prefixed already"),
    PrivateName("kombu.transport.virtual.base:Channel", "_lookup", "routes to a queue whose binding table is gone"),
    PrivateName("kombu.transport.redis:Channel", "_brpop_start", "sends the lossless fetch instead of BRPOP"),
    PrivateName("kombu.transport.redis:Channel", "_brpop_read", "reads the lossless fetch's reply"),
    PrivateName("kombu.transport.redis:Channel", "_get", "basic_get takes a message losslessly"),
    PrivateName(
        "kombu.transport.redis:Channel",
        "keyprefix_binding_permanent",
        "binding tables under the app's prefix",
        since=("kombu", "5.7.0"),
    ),
    PrivateName(
        "kombu.transport.redis:Channel",
        "keyprefix_binding_deadlines",
        "binding deadlines under the app's prefix",
        since=("kombu", "5.7.0"),
    ),
    PrivateName("kombu.transport.redis:Channel", "_create_client", "a channel on a cluster uses the cluster client"),
    PrivateName("kombu.transport.redis:MultiChannelPoller", "_register_BRPOP", "starts a cluster channel's lanes"),
    PrivateName("kombu.transport.redis:Channel", "_poll_error", "reads a cluster lane's socket after an error"),
    PrivateName("kombu.transport.redis:Channel", "_delete", "deletes a queue without chaining DELETE (cluster)"),
    PrivateName("kombu.transport.redis:Channel", "_close_clients", "a cluster channel also closes its lanes"),
    PrivateName(
        "kombu.transport.redis:Channel",
        "maybe_refresh_binding_expiry",
        "a cluster channel refreshes binding tables off the main loop",
        since=("kombu", "5.7.0"),
    ),
    PrivateName("celery.backends.redis:RedisBackend", "_create_client", "the result backend on a cluster"),
    PrivateName("celery.backends.redis:RedisBackend", "_set", "a result's write and PUBLISH on a cluster"),
    PrivateName("celery.app.base:Celery", "_task_from_fun", "declares @shared_task tasks on the taskplane app"),
    PrivateName("celery.concurrency.asynpool:AsynPool", "_event_process_exit", "replaces an exited child at once"),
)


# -- kombu's Redis channel: the poll loop our fetch takes part in -------------------------------------


def consumed_queues(channel: Any) -> list[str]:
    """The queues the channel consumes, in the order the consumer gave them (highest tier first): kombu's
    ``Channel._active_queues``, without broadcast queues. (Its public ``active_queues`` is an ordered list
    from kombu 5.7 on, a set before: a hash order, which broke tier order on kombu 5.5 and 5.6.)"""
    fanout = channel.active_fanout_queues
    return [queue for queue in dict.fromkeys(channel._active_queues) if queue not in fanout]


def poll_sent(channel: Any, connection: Any) -> None:
    """Tell kombu's poller a command is in flight on the channel's connection (``_in_poll``; kombu 5.7's
    stall detector also reads ``_brpop_sent_at``)."""
    channel._in_poll = connection
    channel._brpop_sent_at = time.monotonic()


def poll_done(channel: Any) -> None:
    """Tell kombu's poller the reply was read; kombu 5.7 then sends a pending re-authentication
    (``_flush_brpop_reauth``, which earlier versions do not have)."""
    channel._in_poll = None
    flush = getattr(channel, "_flush_brpop_reauth", None)
    if flush is not None:
        flush()


def poll_in_flight(channel: Any) -> bool:
    """True while a poll command is in flight on the channel (``_in_poll``)."""
    return bool(channel._in_poll)


def poll_timeout(channel: Any) -> float:
    """Seconds a blocking wait lasts: ``brpop_timeout`` (the ``polling_interval`` since kombu 5.6; 1 s
    before, as kombu's own ``_brpop_start`` waits)."""
    return float(getattr(channel, "brpop_timeout", 1) or 1)


# -- kombu's Redis poller: the sockets of a cluster channel's lanes (taskplane.celery.cluster) ---------------


def poller_watch(cycle: Any, channel: Any, client: Any, kind: str) -> None:
    """Have kombu's poller watch the socket of ``client.connection`` for ``channel`` under ``kind`` (once), and
    call ``channel.handlers[kind]`` when it is readable (``_register``, ``_chan_to_sock``)."""
    if (channel, client, kind) not in cycle._chan_to_sock:
        cycle._register(channel, client, kind)


def poller_unwatch(cycle: Any, channel: Any, client: Any, kind: str) -> None:
    """Stop watching what :func:`poller_watch` watches (``_chan_to_sock``, ``_fd_to_chan``; kombu 5.7's
    ``_unregister_from_poll`` is the event loop's ``remove_reader`` once registered with one; before 5.7, the
    poller's own ``unregister``, which is the event loop's poller then)."""
    cycle._chan_to_sock.pop((channel, client, kind), None)
    unregister = getattr(cycle, "_unregister_from_poll", None) or cycle.poller.unregister
    for fileno, owner in list(cycle._fd_to_chan.items()):
        if owner == (channel, kind):
            del cycle._fd_to_chan[fileno]
            with contextlib.suppress(KeyError, ValueError, OSError):
                unregister(fileno)


def poller_owner(cycle: Any, fileno: int) -> tuple[Any, str] | None:
    """(channel, kind) that kombu's poller watches ``fileno`` for, or None (``_fd_to_chan``)."""
    owner: tuple[Any, str] | None = cycle._fd_to_chan.get(fileno)
    return owner


def deliver(channel: Any, message: dict[str, Any], queue: str) -> None:
    """Hand a fetched message to the channel's consumer callbacks (``Transport._deliver``)."""
    channel.connection._deliver(message, queue)


def message_priority(channel: Any, message: dict[str, Any]) -> int:
    """The priority step a message is listed under (``Channel._get_message_priority``)."""
    return int(channel._get_message_priority(message, reverse=False))


def new_client(channel: Any) -> Any:
    """A client on the channel's connection pool (``Channel._create_client``)."""
    return channel._create_client()


def delivered(qos: Any) -> Any:
    """The deliveries a channel holds unacknowledged, by tag (``QoS._delivered``)."""
    return qos._delivered


def raw_payload(message: Any) -> Any:
    """The payload a kombu virtual-transport message was built from (``Message._raw``), or None."""
    return getattr(message, "_raw", None)


# -- Celery ------------------------------------------------------------------------------------------


def exec_options(task: Any) -> dict[str, Any]:
    """A task's publish options (``Task._get_exec_options``; Celery caches them per task)."""
    options: dict[str, Any] = task._get_exec_options()
    return options


def result_meta(backend: Any, result: Any, state: str, request: Any) -> dict[str, Any]:
    """The result meta Celery's backend stores for a task (``Backend._get_result_meta``)."""
    meta: dict[str, Any] = backend._get_result_meta(result=result, state=state, traceback=None, request=request)
    return meta


def pending_config(app: Any) -> Any:
    """A Celery app's settings: ``conf`` once configured, else the pending changes (``Celery._preconf``),
    read without configuring the app."""
    return app.conf if app.configured else app._preconf


def declared_tasks(app: Any) -> Any:
    """A Celery app's task registry, read without finalizing the app (``Celery._tasks``)."""
    return app.__dict__["_tasks"]


def pool_processes(pool: Any) -> Any:
    """The processes of billiard's pool (``Pool._pool``)."""
    return pool._pool


# -- redis-py ------------------------------------------------------------------------------------------


def _takes_command_name() -> bool:
    import redis

    parameter = inspect.signature(redis.ConnectionPool.get_connection).parameters.get("command_name")
    return parameter is not None and parameter.default is inspect.Parameter.empty


def pool_connection(pool: Any) -> Any:
    """A connection from a redis-py pool: redis-py before 5.3 requires a command name (any), later ones
    deprecate it."""
    global _COMMAND_NAME
    if _COMMAND_NAME is None:
        _COMMAND_NAME = _takes_command_name()
    return pool.get_connection("_") if _COMMAND_NAME else pool.get_connection()


_COMMAND_NAME: bool | None = None
