"""A batch of commands and scripts sent in one round trip (:class:`Batch`), and the commands that go into
``publish.lua`` (:func:`publish_command`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.client import Pipeline
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

from taskplane.compat import pool_connection
from taskplane.redis.scripts import Scripts, script_command
from taskplane.redis.sent import SentBatch


class Batch:
    """Commands and scripts sent in one round trip.

    redis-py checks SCRIPT EXISTS before every pipeline holding a registered script (one more round
    trip); a batch calls scripts by their hash alone (``script_command``) and runs a script again by itself
    only if the server did not know it.

    On a cluster client the commands are queued on a plain pipeline that only records them (redis-py's
    cluster pipeline keeps its queue elsewhere, and a batch reads its queue back: to run it through
    ``publish.lua``, to replay it, to keep it when sending failed), and are sent through a cluster
    pipeline, to each command's node, when the batch is executed.
    """

    def __init__(self, client: Any, scripts: Scripts) -> None:
        self._cluster: Any = client if isinstance(client, RedisCluster) else None
        recorder: Any = Pipeline  # no pool: it records commands and never sends them
        self.pipe = recorder(None, {}, False, None) if self._cluster is not None else client.pipeline(transaction=False)
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
        with their source: inside a transaction a script called by an unknown hash would fail alone while
        the rest is applied.

        Raises:
            RuntimeError: the batch holds claims or many records (only ``publish.lua`` runs them).
        """
        if self.claims or self.publish_ops:
            raise RuntimeError("a batch with claims or many records must go out through publish.lua")
        scripts = self._scripts_by_index()
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
        scripts = self._scripts_by_index()
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
        """Send everything; returns the replies in order. If sending fails, or a command is answered with an
        error (a server refusing writes: full, a replica, a cluster slot moving or without a primary), every
        command stays queued for a retry (the writes of a batch are idempotent: ``SentBatch.settle``).

        Raises:
            redis.RedisError: the first command that failed (after unknown scripts were loaded and rerun).
        """
        if self.claims or self.publish_ops:
            raise RuntimeError("a batch with claims or many records must go out through publish.lua")
        queued = list(self.pipe.command_stack)
        try:
            if self._cluster is not None:  # recorded here; sent through a cluster pipeline
                pipe = self._cluster.pipeline(transaction=False)
                for args, options in queued:
                    pipe.execute_command(*args, **options)
                replies = pipe.execute(raise_on_error=False)
            else:
                replies = self.pipe.execute(raise_on_error=False)
            self.pipe.reset()
            return self._replied(list(replies))
        except BaseException:
            self.pipe.command_stack = queued  # a pipeline forgets its commands: keep them for a retry
            raise

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
        if self._cluster is not None or pool is None:  # commands to several nodes: sent and read now
            replies = self.execute()
            return SentBatch(None, None, 0, lambda: replies, self._replied)
        scripts = self._scripts_by_index()
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

    def _scripts_by_index(self) -> dict[int, tuple[str, list[str], list[Any]]]:
        """Each queued script (name, keys, arguments) by its place in the pipeline."""
        return {index: (name, keys, args) for index, name, keys, args in self._calls}

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
