"""``taskplane task show|cancel``, ``tasks``, ``queues``, ``workers``."""

from __future__ import annotations

import datetime
from typing import Annotated

import typer

from taskplane.cli.common import (
    AppOption,
    JsonOption,
    console,
    errors_as_exit,
    fail,
    fmt_ms,
    get_app,
    print_json,
    print_table,
)
from taskplane.core.protocol import TaskState

task_app = typer.Typer(help="Show or cancel one task.", no_args_is_help=True)


@task_app.command("show")
def task_show(task_id: str, app: AppOption = None, json_output: JsonOption = False) -> None:
    """Show a task's record (exit 1 'not found' for an id that never existed)."""
    with errors_as_exit():
        record = get_app(app).status(task_id)
        if record is None:
            raise fail(f"task {task_id} not found")
        data = record.to_dict()
        if json_output:
            print_json(data)
            return
        for key, value in data.items():
            shown = fmt_ms(value) if key.endswith("_ms") else value
            console.print(f"[bold]{key:>20}[/bold]  {shown}", highlight=False)


@task_app.command("result")
def task_result(task_id: str, app: AppOption = None) -> None:
    """Print a finished task's result as JSON (exit 1 while it runs, or when it failed or was cancelled)."""
    with errors_as_exit():
        print_json(get_app(app).result(task_id))


@task_app.command("cancel")
def task_cancel(
    task_id: str,
    app: AppOption = None,
    terminate_after: Annotated[
        float | None, typer.Option("--terminate-after", min=0, help="Kill a running task after this grace (s).")
    ] = None,
) -> None:
    """Cancel a task: queued or delayed never runs; running sees is_cancelled()."""
    with errors_as_exit():
        state = get_app(app).cancel(task_id, terminate_after=terminate_after)
    if state in (TaskState.STARTED, TaskState.PROGRESS):
        then = f", or is terminated in {terminate_after:g} s" if terminate_after is not None else ""
        console.print(
            f"{task_id}: cancel requested; it is running: it ends cancelled when its is_cancelled() check sees it{then}"
        )
    else:
        console.print(f"{task_id}: {state}")


def tasks(
    app: AppOption = None,
    state: Annotated[
        str | None, typer.Option("--state", help="queued, scheduled, started, ... (failed = dead)")
    ] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    queue: Annotated[str | None, typer.Option("--queue")] = None,
    since: Annotated[datetime.datetime | None, typer.Option("--since", help="Created at/after (local).")] = None,
    until: Annotated[datetime.datetime | None, typer.Option("--until", help="Created at/before (local).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 20,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Next page: the cursor the last page printed.")] = None,
    json_output: JsonOption = False,
) -> None:
    """List task records, newest first, a page at a time."""
    since_ms = int(since.timestamp() * 1000) if since else None
    until_ms = int(until.timestamp() * 1000) if until else None
    with errors_as_exit():
        page = get_app(app).tasks(state, name, queue, since_ms, until_ms, limit, cursor)
        if json_output:
            print_json({"tasks": [record.to_dict() for record in page.records], "next_cursor": page.next_cursor})
            return
        print_table(
            "tasks",
            ["id", "name", "queue", "state", "attempts", "created", "error"],
            [
                (
                    r.id,
                    r.name,
                    r.queue,
                    r.state,
                    r.fields.get("attempts", 0),
                    fmt_ms(r.fields.get("created_ms")),
                    r.fields.get("error_message", ""),
                )
                for r in page.records
            ],
        )
        if page.next_cursor:
            console.print(f"more: --cursor {page.next_cursor}", highlight=False)


queues_app = typer.Typer(help="Queue depths; purge a queue.", invoke_without_command=True)


@queues_app.callback()
def queues(ctx: typer.Context, app: AppOption = None, json_output: JsonOption = False) -> None:
    """Ready, delayed and dead counts per queue, highest tier first."""
    if ctx.invoked_subcommand is not None:
        return
    with errors_as_exit():
        stats = get_app(app).queues.stats()
        if json_output:
            print_json(stats)
            return
        print_table(
            "queues",
            ["queue", "tier", "ready", "delayed", "dead"],
            [(s["queue"], s["tier"], s["ready"], s["delayed"], s["dead"]) for s in stats],
        )


@queues_app.command("purge")
def queues_purge(
    name: Annotated[str, typer.Argument(help="The queue to empty.")],
    app: AppOption = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every message waiting in a queue (ready and delayed) and mark their records cancelled."""
    with errors_as_exit():
        tp = get_app(app)
        tp.topology.get(name)
        if not force and not typer.confirm(f"Delete every waiting message of queue {name!r}?"):
            raise typer.Exit(1)
        purged = tp.queues.purge(name)
    console.print(f"purged {purged} message(s) from {name}; their records say cancelled")


def workers(app: AppOption = None, json_output: JsonOption = False) -> None:
    """Live workers (from their heartbeats)."""
    with errors_as_exit():
        found = get_app(app).workers.live()
        if json_output:
            print_json(found)
            return
        print_table(
            "workers",
            ["hostname", "pid", "queues", "concurrency", "active", "processed", "last heartbeat"],
            [
                (
                    w["hostname"],
                    w["pid"],
                    ",".join(w["queues"]),
                    w["concurrency"],
                    w["active"],
                    w["processed"],
                    datetime.datetime.fromtimestamp(w["last_heartbeat"]).isoformat(sep=" ", timespec="seconds"),
                )
                for w in found
            ],
        )
