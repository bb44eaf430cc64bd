"""The ``taskplane`` command: ``taskplane --help`` lists every command."""

from __future__ import annotations

from typing import Annotated

import typer

from taskplane.cli import api_cmd, dev_cmd, dlq_cmd, inspect_cmd, ops_cmd, redis_cmd, run_cmd, schedule_cmd
from taskplane.cli.common import console, errors_as_exit, fail

app = typer.Typer(
    name="taskplane",
    help="A production job platform on Celery + Redis.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(redis_cmd.app, name="redis")
app.add_typer(inspect_cmd.task_app, name="task")
app.add_typer(inspect_cmd.queues_app, name="queues")
app.add_typer(dlq_cmd.app, name="dlq")
app.add_typer(api_cmd.key_app, name="api-key")
app.add_typer(schedule_cmd.app, name="schedules")
app.command()(schedule_cmd.scheduler)
app.command()(api_cmd.api)
app.command()(api_cmd.dashboard)
app.command()(dev_cmd.dev)
app.command()(run_cmd.worker)
app.command()(run_cmd.enqueue)
app.command()(inspect_cmd.tasks)
app.command()(inspect_cmd.workers)
app.command()(ops_cmd.metrics)
app.command()(ops_cmd.check)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(ops_cmd.flower)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(ops_cmd.celery)


@app.command()
def demo(
    duration: Annotated[float, typer.Option("--duration", min=10, help="Seconds the scenario runs.")] = 60.0,
    serve: Annotated[bool, typer.Option("--serve", help="Keep the stack running after the report.")] = False,
) -> None:
    """Run the whole system on this machine with the reference workload (monitoring 20 sites), show it live,
    print a report. The workload is its own package: pip install -e examples/monitoring (make demo does)."""
    try:
        from taskplane_demo.run import run_demo  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise fail(
            "the demo is not installed: run 'make demo' in a taskplane checkout, or "
            f"'pip install -e examples/monitoring' ({exc})"
        ) from None

    with errors_as_exit():
        code = run_demo(console, duration, serve)
    raise typer.Exit(code)


def main() -> None:
    """Entry point of the ``taskplane`` script."""
    app()
