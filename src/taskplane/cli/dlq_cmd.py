"""``taskplane dlq ls|show|requeue|purge``."""

from __future__ import annotations

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
from taskplane.stores.dead_letters import DeadFilter

app = typer.Typer(help="Inspect, requeue and purge dead letters.", no_args_is_help=True)


@app.command("ls")
def dlq_ls(
    queue: Annotated[str | None, typer.Argument(help="Only this queue's dead letters.")] = None,
    app_spec: AppOption = None,
    task: Annotated[str | None, typer.Option("--task", help="Only this task name.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Only this reason.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 20,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    json_output: JsonOption = False,
) -> None:
    """List dead letters, newest first."""
    with errors_as_exit():
        tp = get_app(app_spec)
        letters = tp.dead_letters.find(DeadFilter(queue=queue, task=task, reason=reason), limit=limit, offset=offset)
        if json_output:
            print_json([letter.to_dict() for letter in letters])
            return
        print_table(
            "dead letters",
            ["id", "task", "queue", "reason", "attempts", "last failure", "error"],
            [
                (
                    d.id,
                    d.name,
                    d.queue,
                    d.reason,
                    d.attempts,
                    fmt_ms(d.last_failure_ms),
                    f"{d.exception_type}: {d.exception_message}"[:80],
                )
                for d in letters
            ],
        )


@app.command("show")
def dlq_show(letter_id: str, app_spec: AppOption = None, json_output: JsonOption = False) -> None:
    """Show one dead letter's full envelope."""
    with errors_as_exit():
        letter = get_app(app_spec).dead_letters.get(letter_id)
        if letter is None:
            raise fail(f"dead letter {letter_id} not found")
        data = letter.to_dict(with_raw=True)
        if json_output:
            print_json(data)
            return
        for key, value in data.items():
            if key == "traceback":
                continue
            shown = fmt_ms(value) if key.endswith("_ms") else value
            console.print(f"[bold]{key:>18}[/bold]  {shown}", highlight=False)
        if letter.traceback:
            console.print(letter.traceback, highlight=False)


@app.command("requeue")
def dlq_requeue(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead-letter ids.")] = None,
    app_spec: AppOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter (of --from QUEUE if given).")] = False,
    task: Annotated[str | None, typer.Option("--task", help="Every dead letter of this task.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Every dead letter with this reason.")] = None,
    source: Annotated[str | None, typer.Option("--from", help="Only from this queue's dead letters.")] = None,
    queue: Annotated[
        str | None, typer.Option("--queue", help="Requeue into this queue instead of the original.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Put dead letters back to work with attempts reset (each leaves the DLQ as it enters the queue)."""
    with errors_as_exit():
        where = DeadFilter(queue=source, task=task, reason=reason)
        requeued = get_app(app_spec).dead_letters.requeue(ids, where, all_, queue)
        if json_output:
            print_json({"requeued": requeued})
        else:
            console.print(f"requeued {len(requeued)} dead letter(s)")


@app.command("purge")
def dlq_purge(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead-letter ids.")] = None,
    app_spec: AppOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter (of --queue if given).")] = False,
    task: Annotated[str | None, typer.Option("--task", help="Every dead letter of this task.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Every dead letter with this reason.")] = None,
    queue: Annotated[str | None, typer.Option("--queue", help="Only this queue's dead letters.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Delete dead letters for good."""
    with errors_as_exit():
        removed = get_app(app_spec).dead_letters.purge(ids, DeadFilter(queue=queue, task=task, reason=reason), all_)
        if json_output:
            print_json({"purged": removed})
        else:
            console.print(f"purged {removed} dead letter(s)")
