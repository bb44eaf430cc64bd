"""The Lua scripts in ``lua/``, loaded once per client and called by name."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from typing import Any

import hiredis
from redis.exceptions import NoScriptError

from taskplane.compat import pool_connection
from taskplane.core.transitions import transitions_lua
from taskplane.redis.sent import SentBatch

SCRIPT_NAMES = (
    "delayed_add",
    "delayed_move",
    "queue_purge",
    "fetch",
    "unfetch",
    "unstart",
    "record_write",
    "run_start",
    "publish",
    "unique_release",
    "dead_add",
    "dead_take",
    "dead_remove",
    "lease_acquire",
    "lease_release",
    "schedule_claim",
    "schedule_resume",
)

#: Scripts that call functions of a library script: the library's text goes first.
LIBRARIES: dict[str, tuple[str, ...]] = {
    "record_write": ("record_lib",),
    "run_start": ("record_lib", "start_lib", "gcra_lib"),
    "publish": ("record_lib",),
    "fetch": ("record_lib", "start_lib"),
    "unfetch": ("record_lib", "start_lib"),
    "unstart": ("record_lib", "start_lib"),
}


#: Scripts that only delete (they free memory): they run on a full server too.
RUN_WHEN_FULL = frozenset({"unique_release", "lease_release"})


@cache
def script_source(name: str) -> str:
    """The Lua text of one script (with the libraries it uses in front), without its comment lines: some
    scripts go as EVAL with their text on every task, and the server hashes what it reads.

    Each starts with a shebang (Redis 7 / Valkey script flags): a full server (``maxmemory``, no
    eviction) then refuses the whole script before it starts, instead of failing the first write inside
    it and keeping what the script did before (a message popped from its queue, never put in flight).
    """
    folder = resources.files("taskplane.redis").joinpath("lua")
    parts = [folder.joinpath(f"{part}.lua").read_text() for part in (*LIBRARIES.get(name, ()), name)]
    if "record_lib" in LIBRARIES.get(name, ()):
        parts.insert(0, transitions_lua())
    lines = "\n".join(parts).splitlines()
    shebang = "#!lua flags=allow-oom" if name in RUN_WHEN_FULL else "#!lua"
    return "\n".join([shebang, *(line for line in lines if not line.lstrip().startswith("--"))])


@cache
def script_sha(name: str) -> str:
    """The SHA1 by which the server knows script ``name`` once loaded."""
    return hashlib.sha1(script_source(name).encode()).hexdigest()


#: The command a script runs as (see :func:`script_command`): what a reply read apart from its send is parsed as.
RUN_COMMAND = "EVALSHA"


def script_command(name: str, keys: Sequence[str], args: Sequence[Any], source: bool = False) -> tuple[Any, ...]:
    """The command that runs script ``name`` -- every script taskplane runs goes as this command: EVALSHA
    by the script's hash, or with ``source`` EVAL with its text, which also loads it (inside a MULTI/EXEC,
    where an unknown EVALSHA would fail alone while the rest is applied, and when the server did not know
    the script)."""
    if source:
        return ("EVAL", script_source(name), len(keys), *keys, *args)
    return (RUN_COMMAND, script_sha(name), len(keys), *keys, *args)


def load_script(client: Any, name: str) -> str:
    """Load script ``name`` on ``client``'s server (for a caller that sends its EVALSHA and reads the reply
    elsewhere, so cannot fall back to EVAL); returns its hash."""
    return str(client.script_load(script_source(name)))


def run_script(client: Any, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """Run script ``name`` with one EVALSHA (one EVAL, which also loads it, if the server does not know it).
    Leaner than redis-py's ``Script`` call, which costs a tenth of an enqueue."""
    try:
        return client.execute_command(*script_command(name, keys, args))
    except NoScriptError:
        return client.execute_command(*script_command(name, keys, args, source=True))


def run_script_on(connection: Any, name: str, keys: list[str], args: list[Any]) -> Any:
    """:func:`run_script` on one redis-py connection the caller holds alone: the command is packed by
    hiredis and the reply read on that connection, without redis-py's pool checkout, fork check and
    retry wrapper (a tenth of an enqueue). The caller retries a lost connection.

    Raises:
        redis.ConnectionError: the connection broke (it is disconnected).
    """
    try:
        return _command_on(connection, script_command(name, keys, args))
    except NoScriptError:
        return _command_on(connection, script_command(name, keys, args, source=True))


def _command_on(connection: Any, command: tuple[Any, ...]) -> Any:
    """Send one command on ``connection`` and read its reply (a reply error is raised)."""
    connection.send_packed_command([hiredis.pack_command(command)], check_health=False)
    return connection.read_response()


class Scripts:
    """The scripts, run on one client (:func:`run_script`)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run script ``name``; returns its reply."""
        return run_script(self._client, name, keys, args)


class Batch:
    """Commands and scripts sent in one round trip.

    redis-py checks SCRIPT EXISTS before every pipeline holding a registered script (one more round
    trip); a batch sends bare EVALSHA instead and runs a script again by itself only if the server
    did not know it.
    """

    def __init__(self, client: Any, scripts: Scripts) -> None:
        self.pipe = client.pipeline(transaction=False)
        self._scripts = scripts
        self._calls: list[tuple[int, str, list[str], list[Any]]] = []
        self._on_reply: list[tuple[int, Callable[[Any], None]]] = []
        #: Claims (key, value, time to live in ms) that ``publish.lua`` takes before anything else.
        self.claims: list[tuple[str, str, int]] = []
        #: Operations only ``publish.lua`` runs (its keys, its arguments), after the claims and the rest.
        self.publish_ops: list[tuple[list[str], list[Any]]] = []

    def claim(self, key: str, value: str, ttl_ms: int) -> None:
        """Claim ``key`` for ``value`` in the publish this batch goes out with (see ``publish.lua``)."""
        self.claims.append((key, value, max(1, int(ttl_ms))))

    def records(
        self,
        shared_keys: list[str],
        template: list[Any],
        positions: list[int],
        records: list[tuple[str, str, list[Any]]],
    ) -> None:
        """Queue many ``record_write.lua`` writes that differ only in a few values, as one operation of
        ``publish.lua`` (its ``'m'``): ``template`` is one write's arguments, ``positions`` (1-based, the
        id's first) where each record's values go, ``records`` each record's (hash key, events channel,
        values); ``shared_keys`` are the write's other keys, in order."""
        values = [value for _, _, record_values in records for value in record_values]
        keys = [*shared_keys, *(key for record_key, events, _ in records for key in (record_key, events))]
        argv = [len(template), *template, len(positions), *positions, len(records), len(shared_keys), *values]
        self.publish_ops.append((keys, ["m", len(argv), *argv]))

    def script(
        self, name: str, keys: list[str], args: list[Any], on_reply: Callable[[Any], None] | None = None
    ) -> None:
        """Queue script ``name``; ``on_reply`` gets its reply once the batch was sent."""
        if on_reply is not None:
            self._on_reply.append((len(self.pipe), on_reply))
        self._calls.append((len(self.pipe), name, keys, args))
        self.pipe.execute_command(*script_command(name, keys, args))

    def replay(self, pipe: Any) -> None:
        """Queue this batch's commands on ``pipe`` (another client's, a MULTI/EXEC transaction), scripts
        as EVAL with their source: inside a transaction an unknown EVALSHA would fail alone while the
        rest is applied.

        Raises:
            RuntimeError: the batch holds claims or many records (only ``publish.lua`` runs them).
        """
        if self.claims or self.publish_ops:
            raise RuntimeError("a batch with claims or many records must go out through publish.lua")
        scripts = {index: (name, keys, args) for index, name, keys, args in self._calls}
        for index, (args, options) in enumerate(self.pipe.command_stack):
            if index in scripts:
                pipe.execute_command(*script_command(*scripts[index], source=True))
            else:
                pipe.execute_command(*args, **options)

    @property
    def publishable(self) -> bool:
        """True if ``publish.lua`` can run this batch: its only script is ``record_write``."""
        return all(name == "record_write" for _, name, _, _ in self._calls)

    def as_publish(self) -> tuple[list[str], list[Any]]:
        """This batch as the keys and arguments of ``publish.lua`` (one atomic script), to which the
        caller appends its own commands (:func:`publish_command`).

        Raises:
            RuntimeError: the batch holds a script other than ``record_write`` (see :attr:`publishable`).
        """
        if not self.publishable:
            raise RuntimeError("publish.lua runs record writes and plain commands only")
        scripts = {index: (name, keys, args) for index, name, keys, args in self._calls}
        keys: list[str] = []
        argv: list[Any] = [0]
        for key, value, ttl_ms in self.claims:
            keys.append(key)
            argv.extend(("k", 2, value, ttl_ms))
            argv[0] += 1
        for index, (args, _options) in enumerate(self.pipe.command_stack):
            if index in scripts:
                _, script_keys, script_args = scripts[index]
                keys.extend(script_keys)
                argv.extend(("r", len(script_args) + 1, *script_args, len(script_keys)))
                argv[0] += 1
            else:
                publish_command(keys, argv, *args)
        for op_keys, op_argv in self.publish_ops:
            keys.extend(op_keys)
            argv.extend(op_argv)
            argv[0] += 1
        return keys, argv

    def execute(self) -> list[Any]:
        """Send everything; returns the replies in order.

        Raises:
            redis.RedisError: the first command that failed (after unknown scripts were loaded and rerun).
        """
        if self.claims or self.publish_ops:
            raise RuntimeError("a batch with claims or many records must go out through publish.lua")
        queued = list(self.pipe.command_stack)
        try:
            replies = self.pipe.execute(raise_on_error=False)
        except BaseException:
            self.pipe.command_stack = queued  # the pipeline forgets its commands: keep them for a retry
            raise
        return self._replied(list(replies))

    def send(self) -> SentBatch:
        """Send everything on a connection of its own without waiting for the replies (one write, no round
        trip); :meth:`SentBatch.settle` reads them later. Scripts go as EVAL with their source: a server
        that lost its script cache (a restart) must not leave the writes undone until the replies are read.

        Raises:
            redis.ConnectionError: the batch could not be written (nothing was sent then).
        """
        if self.claims or self.publish_ops:
            raise RuntimeError("a batch with claims or many records must go out through publish.lua")
        pool = getattr(self.pipe, "connection_pool", None)
        if pool is None:  # a cluster's pipeline, whose commands go to several nodes: sent and read now
            replies = self.execute()
            return SentBatch(None, None, 0, lambda: replies, self._replied)
        scripts = {index: (name, keys, args) for index, name, keys, args in self._calls}
        commands = [
            script_command(*scripts[index], source=True) if index in scripts else args
            for index, (args, _) in enumerate(self.pipe.command_stack)
        ]
        connection = pool_connection(pool)
        try:
            connection.send_packed_command(connection.pack_commands(commands))
        except BaseException:
            connection.disconnect()
            pool.release(connection)
            raise
        return SentBatch(connection, pool, len(commands), self.execute, self._replied)

    def _replied(self, replies: list[Any]) -> list[Any]:
        """Rerun the scripts the server did not know, raise the first error, call the reply callbacks."""
        for index, name, keys, args in self._calls:
            if isinstance(replies[index], NoScriptError):
                replies[index] = self._scripts.run(name, keys, args)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        for index, callback in self._on_reply:
            callback(replies[index])
        return replies


def publish_command(keys: list[str], argv: list[Any], name: str, key: str, *args: Any) -> None:
    """Append one single-key command to ``publish.lua``'s ``keys`` and ``argv`` (see :meth:`Batch.as_publish`)."""
    keys.append(key)
    argv.extend(("c", len(args) + 1, name, *args))
    argv[0] += 1
