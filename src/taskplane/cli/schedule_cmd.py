"""``taskplane scheduler`` and ``taskplane schedules [pause|resume|run] NAME``."""

from __future__ import annotations

import logging
import signal
import threading
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
from taskplane.scheduler.registry import ScheduleStatus

app = typer.Typer(help="Periodic schedules: list, pause, resume, run now.", no_args_is_help=False)
NameArgument = Annotated[str, typer.Argument(help="The schedule's name.")]


def scheduler(
    app: AppOption = None,
    lease_ttl: Annotated[
        float | None, typer.Option("--lease-ttl", min=1, help="Leader lease in seconds (default 10).")
    ] = None,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
) -> None:
    """Run a scheduler. Start as many as you like: one leads and fires; SIGTERM/Ctrl-C hands the lease over."""
    logging.basicConfig(level=loglevel.upper(), format="[%(asctime)s %(levelname)s %(name)s] %(message)s")
    with errors_as_exit():
        tp = get_app(app, required=True)
        configure_logging(tp.settings.log_format)
        tp.check_celery_config()
        tp.ping()
        runner = tp.scheduler(lease_ttl=lease_ttl)
        tp.schedules.all()  # with the team's beat_schedule: an entry taskplane cannot run is one line, now
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    runner.run(stop)


@app.callback(invoke_without_command=True)
def schedules(ctx: typer.Context, app: AppOption = None, json_output: JsonOption = False) -> None:
    """List schedules: name, task, next run, last run and the last task's state."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = app  # `schedules -A app pause NAME` works as well as `schedules pause NAME -A app`
        return
    with errors_as_exit():
        tp = get_app(app, required=True)
        statuses = tp.schedules.statuses()
        leader = tp.schedules.leader()
    if json_output:
        print_json(
            {
                "leader": None if leader is None else vars(leader),
                "schedules": [status.to_dict() for status in statuses],
            }
        )
        return
    print_table(
        "schedules",
        ("name", "task", "when", "next run", "last run", "last state", "fired/hand/skip"),
        [_row(status) for status in statuses],
    )
    if leader is None:
        console.print("leader: none (no scheduler is running)")
    else:
        console.print(f"leader: {leader.owner} (epoch {leader.epoch}, lease {leader.expires_in_ms / 1000:.1f}s left)")


def _row(status: ScheduleStatus) -> list[Any]:
    return [
        status.name,
        status.task,
        f"{status.schedule} -> {status.queue}",
        "paused" if status.paused else fmt_ms(status.next_run_ms),
        fmt_ms(status.last_run_ms) + (f" ({status.last_source})" if status.last_source else ""),
        status.last_state,
        f"{status.fired}/{status.manual}/{status.skipped}",
    ]


@app.command()
def pause(ctx: typer.Context, name: NameArgument, app: AppOption = None) -> None:
    """Stop firing NAME until resumed (kept in Redis: lasts across restarts)."""
    with errors_as_exit():
        get_app(app or ctx.obj, required=True).schedules.pause(name)
    console.print(f"paused {name}")


@app.command()
def resume(ctx: typer.Context, name: NameArgument, app: AppOption = None) -> None:
    """Fire NAME again from its next slot."""
    with errors_as_exit():
        status = get_app(app or ctx.obj, required=True).schedules.resume(name)
    console.print(f"resumed {name}; next run {fmt_ms(status.next_run_ms)}")


@app.command()
def run(ctx: typer.Context, name: NameArgument, app: AppOption = None) -> None:
    """Fire NAME now, outside its slots; prints the task id."""
    with errors_as_exit():
        task_id = get_app(app or ctx.obj, required=True).schedules.run(name)
    typer.echo(task_id)
