"""What every command shares: app selection, error handling, output."""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import kombu.exceptions
import redis
import typer
from rich.console import Console
from rich.table import Table

from taskplane.app import Taskplane
from taskplane.core.errors import InvalidRequestError, TaskplaneError
from taskplane.loader import load_app

AppOption = Annotated[
    str | None,
    typer.Option("-A", "--app", envvar="TASKPLANE_APP", help="The app as module[:attr] (env TASKPLANE_APP)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

#: The usage error of a command that needs the app's tasks and schedules, run without naming the app.
NO_APP = "this command needs the app: give it with -A module:attr (or set TASKPLANE_APP=module:attr)"

console = Console()
err_console = Console(stderr=True)


def get_app(spec: str | None, required: bool = False) -> Taskplane:
    """The app named by ``-A``, else a plain Taskplane configured from the environment (``required``: a usage
    error instead, for commands that need the app's tasks and schedules). It says on stderr which Redis server
    it uses; an embedded server it starts is stopped when the command ends, unless another process uses it.

    Raises:
        typer.Exit: (2) ``required`` and no app given.
    """
    if spec is None and required:
        raise fail(NO_APP, code=2)
    tp = load_app(spec) if spec else Taskplane()
    # JSON logs stay JSON lines: there the note is a log record (the commands that log set logging up first)
    tp.on_server = logging.getLogger("taskplane.cli").info if tp.settings.log_format == "json" else say
    atexit.register(release_server, tp)
    return tp


def say(line: str) -> None:
    """A line about what a command does besides its output, on stderr (stdout stays for results)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def release_server(tp: Taskplane) -> None:
    """Stop the embedded server ``tp`` started, unless another process is connected to it."""
    server = tp.embedded
    if server is None or not server.started:
        return
    others = server.other_clients()
    if others == 0 and server.stop():
        say("taskplane: stopped the embedded server it started")
    elif others:
        say(f"taskplane: left the embedded server running: {others} connection(s) of other processes use it")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line and return the Exit to raise."""
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextlib.contextmanager
def errors_as_exit() -> Iterator[None]:
    """Turn taskplane and connection errors into one line on stderr and exit code 1 (2 for a bad request)."""
    try:
        yield
    except typer.Exit:
        raise
    except InvalidRequestError as exc:  # the request itself is wrong: a usage error
        raise fail(str(exc), code=2) from None
    except TaskplaneError as exc:
        raise fail(str(exc)) from None
    except (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError) as exc:
        raise fail(f"Redis is unreachable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    except (ConnectionError, OSError) as exc:
        raise fail(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise fail(f"{type(exc).__name__}: {first}") from None


def parse_json(value: str | None, what: str, kind: type) -> Any:
    """Parse a --args/--kwargs JSON value of the given kind (list or dict); usage error otherwise."""
    if value is None:
        return kind()
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=what) from None
    if not isinstance(parsed, kind):
        raise typer.BadParameter(f"must be a JSON {'array' if kind is list else 'object'}", param_hint=what)
    return parsed


def print_json(value: Any) -> None:
    """Print JSON to stdout (plain, for pipes)."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a rich table (or a line saying there is nothing)."""
    if not rows:
        console.print(f"{title}: none")
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)


def fmt_ms(value: Any) -> str:
    """A millisecond timestamp as local ISO time, or ''."""
    import datetime

    if not value:
        return ""
    return datetime.datetime.fromtimestamp(int(value) / 1000).isoformat(sep=" ", timespec="seconds")
