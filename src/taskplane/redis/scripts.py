"""The Lua scripts in ``lua/``, loaded once per client and called by name."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import hiredis
from redis.exceptions import NoScriptError

from taskplane.core.transitions import transitions_lua

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
