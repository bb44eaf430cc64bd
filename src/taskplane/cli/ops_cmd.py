"""``taskplane metrics`` (a standalone Prometheus exporter) and ``taskplane flower``."""

from __future__ import annotations

import importlib.util
import signal
import threading
from typing import Annotated, Any

import typer

from taskplane.cli.common import AppOption, console, errors_as_exit, fail, get_app
from taskplane.observability.logging import configure as configure_logging


def metrics(
    app: AppOption = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 9808,
) -> None:
    """Serve Prometheus metrics of the whole cluster at /metrics (no key; bind it to a private interface)."""
    from prometheus_client import start_http_server

    with errors_as_exit():
        tp = get_app(app)
        configure_logging(tp.settings.log_format)
        try:
            server, thread = start_http_server(port, addr=host, registry=tp.metrics_registry())
        except OSError as exc:
            raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        console.print(f"taskplane metrics on http://{host}:{port}/metrics")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    thread.join(5)


def flower(
    ctx: typer.Context,
    app: AppOption = None,
    address: Annotated[str, typer.Option("--address", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 5555,
    basic_auth: Annotated[
        str | None,
        typer.Option("--basic-auth", envvar="FLOWER_BASIC_AUTH", help="user:password (Flower's API needs auth)."),
    ] = None,
) -> None:
    """Start Flower on the same app and broker; more Flower options may follow (see `celery flower --help`)."""
    if importlib.util.find_spec("flower") is None:
        raise fail("Flower is not installed: pip install 'taskplane[flower]'")
    with errors_as_exit():
        tp = get_app(app)
        configure_logging(tp.settings.log_format)
        tp.ping()
    argv = ["flower", f"--address={address}", f"--port={port}"]
    if basic_auth:
        argv.append(f"--basic-auth={basic_auth}")
    console.print(f"Flower on http://{address}:{port} for app {tp.name!r}")
    tp.celery.start([*argv, *ctx.args])


def celery(ctx: typer.Context, app: AppOption = None) -> None:
    """Run a celery subcommand on the app: taskplane celery -A proj:tp -- inspect active (its exit code)."""
    with errors_as_exit():
        tp = get_app(app)
    if not ctx.args:
        raise fail("give a celery subcommand after --, e.g. taskplane celery -A proj:tp -- inspect active")
    code: Any = tp.celery.start(list(ctx.args))
    raise typer.Exit(int(code or 0))


def check(
    app: AppOption = None,
    worker: Annotated[
        str | None, typer.Option("--worker", help="Also require this worker's heartbeat (a liveness probe).")
    ] = None,
) -> None:
    """Exit 0 if Redis answers (and --worker sends heartbeats), else 1 with one line: for container probes."""
    with errors_as_exit():
        tp = get_app(app)
        tp.ping()
        if worker is not None and not any(w["hostname"] == worker for w in tp.workers.live()):
            raise fail(f"worker {worker!r} sent no heartbeat in the last 15 s")
    console.print("ok")
