"""``taskplane api`` (serve the HTTP API), ``taskplane dashboard`` and ``taskplane api-key create|ls|revoke``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from taskplane.cli.common import (
    AppOption,
    JsonOption,
    console,
    errors_as_exit,
    fmt_ms,
    get_app,
    print_json,
    print_table,
)
from taskplane.observability.logging import configure as configure_logging
from taskplane.stores.api_keys import SCOPES

key_app = typer.Typer(help="Create, list and revoke API keys of the HTTP API.", no_args_is_help=True)


def api(
    app: AppOption = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="Log every request.")] = True,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Serve the HTTP API (OpenAPI at /docs, the dashboard at /); stops cleanly on SIGTERM or Ctrl-C."""
    _serve(app, host, port, access_log, log_level, dashboard=False)


def dashboard(
    app: AppOption = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
) -> None:
    """Serve the web dashboard (with the HTTP API it calls); sign in with an API key
    (`taskplane api-key create --name NAME --scope read|admin`)."""
    _serve(app, host, port, access_log=False, log_level="warning", dashboard=True)


#: Seconds a stopping API gives the requests in flight (event streams included) before it closes them.
GRACEFUL_SHUTDOWN = 10


def _serve(app: str | None, host: str, port: int, access_log: bool, log_level: str, dashboard: bool) -> None:
    import uvicorn

    from taskplane.api import create_app
    from taskplane.api.serving import header_deadline_protocol

    with errors_as_exit():
        tp = get_app(app, required=True)
        tp.check_celery_config()
        asgi_app = create_app(tp)
        base = f"http://{host}:{port}"
        if dashboard:
            console.print(f"taskplane dashboard on {base}/ (sign in with an API key; API: {base}/api/v1)")
        else:
            console.print(f"taskplane API on {base}/api/v1 (docs: {base}/docs, dashboard: {base}/)")
    log_config: Any = uvicorn.config.LOGGING_CONFIG
    if tp.settings.log_format == "json":  # uvicorn's loggers then pass their lines to the JSON root handler
        configure_logging("json")
        log_config = None
    uvicorn.run(
        asgi_app,
        host=host,
        port=port,
        access_log=access_log,
        log_level=log_level,
        server_header=False,
        log_config=log_config,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        http=header_deadline_protocol(tp.settings.api_header_timeout),
    )


@key_app.command("create")
def key_create(
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key.")],
    scope: Annotated[list[str], typer.Option("--scope", help=f"Repeatable: {', '.join(SCOPES)}.")],
    app: AppOption = None,
    replace: Annotated[bool, typer.Option("--replace", help="Revoke other keys with this name.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Create a key and print its token once (only a digest is stored)."""
    with errors_as_exit():
        key, token = get_app(app).api_keys.create(name, scope, replace=replace)
        if json_output:
            print_json({**key.public(), "token": token})
            return
        console.print(f"API key {key.id} ({key.name}: {', '.join(key.scopes)}); shown once, store it now:")
        typer.echo(token)


@key_app.command("ls")
def key_ls(app: AppOption = None, json_output: JsonOption = False) -> None:
    """List keys (never their secrets)."""
    with errors_as_exit():
        keys = get_app(app).api_keys.find()
        if json_output:
            print_json([key.public() for key in keys])
            return
        print_table(
            "API keys",
            ["id", "name", "scopes", "created"],
            [(k.id, k.name, ",".join(k.scopes), fmt_ms(k.created_ms)) for k in keys],
        )


@key_app.command("revoke")
def key_revoke(key_id: str, app: AppOption = None) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    with errors_as_exit():
        get_app(app).api_keys.revoke(key_id)
        console.print(f"revoked API key {key_id}")
