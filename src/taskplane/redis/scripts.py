"""The Lua scripts in ``lua/``, loaded once per client and called by name."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from redis.commands.core import Script

SCRIPT_NAMES = (
    "delayed_add",
    "delayed_move",
    "gcra_reserve",
    "record_write",
    "unique_release",
    "dead_add",
    "dead_take",
    "lease_acquire",
    "lease_release",
    "schedule_claim",
    "schedule_resume",
)


@cache
def script_source(name: str) -> str:
    """The Lua text of one script."""
    return resources.files("taskplane.redis").joinpath("lua", f"{name}.lua").read_text()


class Scripts:
    """Registered scripts of one client; each call uses EVALSHA and falls back to EVAL once."""

    def __init__(self, client: Any) -> None:
        self._scripts: dict[str, Script] = {name: client.register_script(script_source(name)) for name in SCRIPT_NAMES}

    def run(self, name: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        """Run script ``name`` (optionally on a pipeline or another client)."""
        return self._scripts[name](keys=keys, args=args, client=client)
