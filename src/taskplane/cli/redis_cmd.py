"""``taskplane redis start|stop|status|url``: the embedded server of the data directory."""

from __future__ import annotations

from typing import Annotated

import typer

from taskplane.cli.common import JsonOption, console, errors_as_exit, fail, print_json, print_table
from taskplane.core.settings import load_settings
from taskplane.redis.client import safe_url
from taskplane.redis.embedded import EmbeddedServer
from taskplane.redis.local_servers import running_servers

app = typer.Typer(
    help="The project's embedded Valkey/Redis server (its data directory: the nearest .taskplane/ upwards).",
    no_args_is_help=True,
)


def _server() -> EmbeddedServer:
    settings = load_settings()
    return EmbeddedServer(settings.data_dir, settings.redis_server)


@app.command()
def start(json_output: JsonOption = False) -> None:
    """Start the embedded server (or report the one already running)."""
    with errors_as_exit():
        server = _server()
        info = server.start()
        if json_output:
            print_json({"pid": info.pid, "port": info.port, "url": info.url, "dir": str(server.data_dir)})
        else:
            how = "started" if server.started else "already running"
            console.print(f"embedded server {how}: pid {info.pid}, {safe_url(info.url)} ({server.data_dir})")


@app.command()
def stop(
    every: Annotated[
        bool, typer.Option("--all", help="Stop every embedded server of this user, of any project.")
    ] = False,
) -> None:
    """Stop the embedded server of the project's data directory (or, with --all, every one that runs)."""
    with errors_as_exit():
        if not every:
            server = _server()
            if server.stop():
                console.print(f"embedded server stopped ({server.data_dir})")
            else:
                console.print(f"no embedded server was running ({server.data_dir})")
            return
        servers = running_servers()
        for running in servers:
            EmbeddedServer(running.data_dir).stop()
            console.print(f"embedded server stopped: pid {running.pid}, port {running.port} ({running.data_dir})")
        if not servers:
            console.print("no embedded server was running")


@app.command()
def status(json_output: JsonOption = False) -> None:
    """Say whether the project's embedded server runs (exit 1 when it does not) and list every embedded server
    of this user that runs."""
    with errors_as_exit():
        server = _server()
        info = server.info()
        others = running_servers()
        if json_output:
            print_json(
                {
                    "running": info is not None,
                    "pid": info.pid if info else None,
                    "port": info.port if info else None,
                    "dir": str(server.data_dir),
                    "servers": [vars(running) for running in others],
                }
            )
        else:
            if info:
                console.print(f"running: pid {info.pid}, port {info.port} ({server.data_dir})", highlight=False)
            else:
                console.print(f"not running ({server.data_dir})", highlight=False)
            print_table(
                "embedded servers of this user",
                ["pid", "port", "data directory"],
                [(running.pid, running.port, running.data_dir) for running in others],
            )
        if info is None:
            raise typer.Exit(1)


@app.command()
def url() -> None:
    """Print the server's URL with its password (for REDIS_URL / TASKPLANE_REDIS_URL)."""
    with errors_as_exit():
        info = _server().info()
        if info is None:
            raise fail("no embedded server is running; start one with 'taskplane redis start'")
        typer.echo(info.url)
