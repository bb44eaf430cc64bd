"""The Lua scripts in ``lua/``, loaded once per client and called by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from redis.commands.core import Script
from redis.exceptions import NoScriptError

SCRIPT_NAMES = (
    "delayed_add",
    "delayed_move",
    "fetch",
    "gcra_reserve",
    "record_write",
    "run_start",
    "delivery_adjust",
    "unique_release",
    "dead_add",
    "dead_take",
    "lease_acquire",
    "lease_release",
    "schedule_claim",
    "schedule_resume",
)


#: Scripts that call functions of a library script: the library's text goes first.
LIBRARIES: dict[str, tuple[str, ...]] = {"record_write": ("record_lib",), "run_start": ("record_lib",)}


@cache
def script_source(name: str) -> str:
    """The Lua text of one script (with the libraries it uses in front)."""
    folder = resources.files("taskplane.redis").joinpath("lua")
    parts = [folder.joinpath(f"{part}.lua").read_text() for part in (*LIBRARIES.get(name, ()), name)]
    return "\n".join(parts)


class Scripts:
    """Registered scripts of one client; each call uses EVALSHA and falls back to EVAL once."""

    def __init__(self, client: Any) -> None:
        self._scripts: dict[str, Script] = {name: client.register_script(script_source(name)) for name in SCRIPT_NAMES}

    def run(self, name: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        """Run script ``name`` (optionally on a pipeline or another client)."""
        return self._scripts[name](keys=keys, args=args, client=client)

    def sha(self, name: str) -> str:
        """The SHA1 of script ``name``."""
        return str(self._scripts[name].sha)


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

    def script(
        self, name: str, keys: list[str], args: list[Any], on_reply: Callable[[Any], None] | None = None
    ) -> None:
        """Queue script ``name``; ``on_reply`` gets its reply once the batch was sent."""
        if on_reply is not None:
            self._on_reply.append((len(self.pipe), on_reply))
        self._calls.append((len(self.pipe), name, keys, args))
        self.pipe.evalsha(self._scripts.sha(name), len(keys), *keys, *args)

    def replay(self, pipe: Any) -> None:
        """Queue this batch's commands on ``pipe`` (another client's, a MULTI/EXEC transaction), scripts
        as EVAL with their source: inside a transaction an unknown EVALSHA would fail alone while the
        rest is applied."""
        scripts = {index: (name, keys, args) for index, name, keys, args in self._calls}
        for index, (args, options) in enumerate(self.pipe.command_stack):
            if index in scripts:
                name, keys, script_args = scripts[index]
                pipe.eval(script_source(name), len(keys), *keys, *script_args)
            else:
                pipe.execute_command(*args, **options)

    def execute(self) -> list[Any]:
        """Send everything; returns the replies in order.

        Raises:
            redis.RedisError: the first command that failed (after unknown scripts were loaded and rerun).
        """
        queued = list(self.pipe.command_stack)
        try:
            replies = self.pipe.execute(raise_on_error=False)
        except BaseException:
            self.pipe.command_stack = queued  # the pipeline forgets its commands: keep them for a retry
            raise
        for index, name, keys, args in self._calls:
            if isinstance(replies[index], NoScriptError):
                replies[index] = self._scripts.run(name, keys, args)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        for index, callback in self._on_reply:
            callback(replies[index])
        return list(replies)
