"""``taskplane worker`` and ``taskplane enqueue``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from taskplane.celery.worker.run import worker_argv
from taskplane.cli.common import (
    AppOption,
    JsonOption,
    console,
    errors_as_exit,
    fail,
    get_app,
    parse_json,
    print_json,
)
from taskplane.client.handle import TaskFailedError


def worker(
    app: AppOption = None,
    queues: Annotated[
        str | None, typer.Option("--queues", "-Q", help="Comma-separated queues (default: the profile's).")
    ] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", min=1, help="Worker processes.")] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="A named profile (default: all queues).")] = None,
    hostname: Annotated[str | None, typer.Option("--hostname", "-n", help="Worker name.")] = None,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
) -> None:
    """Run a worker; it takes from the highest tier first and drains within the shutdown timeout on SIGTERM."""
    with errors_as_exit():
        tp = get_app(app, required=True)
        names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
        tp.check_celery_config()
        team = tp.celery.team_settings
        argv = worker_argv(
            tp.profiles, tp.topology, tp.settings, names, concurrency, profile, hostname, loglevel, team=team
        )
        tp.ping()
    try:
        tp.celery.worker_main(argv)
    except Exception as exc:  # e.g. a transport that cannot be imported: one line, not Celery's traceback
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise fail(f"the worker could not run: {type(exc).__name__}: {first}") from None
    # worker_main drops the worker's exit code: an unrecoverable error would end the process with 0, and
    # a supervisor that restarts on failure would leave the worker down.
    code = tp.celery.worker_exit_code
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__  # Celery redirected them into its log
    if code:
        raise fail(f"the worker stopped with exit code {code} (an unrecoverable error: see the log above)", code=1)


def enqueue(
    name: Annotated[str, typer.Argument(help="Task name.")],
    app: AppOption = None,
    args: Annotated[str | None, typer.Option("--args", help="Positional arguments as a JSON array.")] = None,
    kwargs: Annotated[str | None, typer.Option("--kwargs", help="Keyword arguments as a JSON object.")] = None,
    queue: Annotated[str | None, typer.Option("--queue", help="Send to this queue instead of the task's.")] = None,
    countdown: Annotated[float | None, typer.Option("--countdown", min=0, help="Run after this many seconds.")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="The same key returns the same task; nothing new queued.")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the result.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0, help="Seconds to wait with --wait.")] = 60.0,
    json_output: JsonOption = False,
) -> None:
    """Enqueue a task by name; prints its id (or, with --wait, its result)."""
    positional = parse_json(args, "--args", list)
    named = parse_json(kwargs, "--kwargs", dict)
    with errors_as_exit():
        tp = get_app(app, required=True)
        handle = tp.enqueue(name, positional, named, queue=queue, countdown=countdown, idempotency_key=idempotency_key)
        if not wait:
            if json_output:
                print_json({"id": handle.id, "existing": handle.existing})
            else:
                typer.echo(handle.id)
            return
        try:
            result = handle.result(timeout=timeout)
        except TaskFailedError:
            if not json_output:
                raise
            print_json(handle.record().to_dict())
            raise typer.Exit(1) from None
        if json_output:
            print_json({"id": handle.id, "state": "succeeded", "result": result})
        else:
            console.print(result)
