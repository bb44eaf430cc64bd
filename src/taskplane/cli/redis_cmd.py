"""``taskplane redis start|stop|status|url``: the embedded server of the data directory."""

from __future__ import annotations

import typer

from taskplane.cli.common import JsonOption, console, errors_as_exit, fail, print_json
from taskplane.core.settings import load_settings
from taskplane.redis.client import safe_url
from taskplane.redis.embedded import EmbeddedServer

app = typer.Typer(help="Run the embedded Valkey/Redis server of the data directory.", no_args_is_help=True)


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
            print_json({"pid": info.pid, "port": info.port, "url": info.url, "dir": str(server.directory)})
        else:
            console.print(f"embedded server running: pid {info.pid}, {safe_url(info.url)} ({server.directory})")


@app.command()
def stop() -> None:
    """Stop the embedded server of the data directory."""
    with errors_as_exit():
        if _server().stop():
            console.print("embedded server stopped")
        else:
            console.print("no embedded server was running")


@app.command()
def status(json_output: JsonOption = False) -> None:
    """Say whether the embedded server runs (exit 1 when it does not)."""
    with errors_as_exit():
        server = _server()
        info = server.info()
        if json_output:
            print_json(
                {
                    "running": info is not None,
                    "pid": info.pid if info else None,
                    "port": info.port if info else None,
                    "dir": str(server.directory),
                }
            )
        elif info:
            console.print(f"running: pid {info.pid}, port {info.port} ({server.directory})")
        else:
            console.print(f"not running ({server.directory})")
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
