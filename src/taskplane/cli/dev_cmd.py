"""``taskplane dev``: a local stack for one app (server, a worker, the API) until Ctrl-C."""

from __future__ import annotations

import signal
import time
from typing import Annotated

import typer

from taskplane.cli.common import NO_APP, AppOption, console, errors_as_exit, fail, get_app
from taskplane.stack import ChildProcess, start_api, stop_all


def dev(
    app: AppOption = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="API port on 127.0.0.1.")] = 8000,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Worker processes.")] = 2,
) -> None:
    """Run the app locally: Redis (embedded unless configured), one worker on every queue and the HTTP API
    with the dashboard. Prints their URLs and an admin key; Ctrl-C stops everything it started."""
    if app is None:
        raise fail(NO_APP, code=2)
    with errors_as_exit():
        tp = get_app(app)
        tp.check_celery_config()
        redis_url = tp.redis_url
        tp.ping()
        _, token = tp.api_keys.create("dev", ["admin"], replace=True)
    logs = tp.settings.data_dir / "dev"
    worker = ChildProcess("worker", ["worker", "-A", app, "-c", str(concurrency)], redis_url, logs / "worker.log")
    children = [worker]
    try:
        # Ctrl-C and SIGTERM stop the stack, also when this process was started with SIGINT ignored (a
        # parent that ignores it, as test runners and some supervisors do, hands that on to its children);
        # from before anything is printed, so that a Ctrl-C as soon as the stack says it is up is not lost
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        with errors_as_exit():
            children.append(start_api(app, redis_url, port, logs / "api.log"))
        base = f"http://127.0.0.1:{port}"
        for line in (
            f"[bold]dashboard[/bold] {base}/   (sign in with the API key below)",
            f"[bold]API[/bold]      {base}/api/v1   (docs: {base}/docs)",
            f"[bold]API key[/bold]  {token}   (admin; replaced on the next `taskplane dev`)",
            f"[bold]logs[/bold]     {logs}/   Ctrl-C stops the stack",
            f"try:  curl -H 'Authorization: Bearer {token}' {base}/api/v1/queues",
        ):
            console.print(line, highlight=False, soft_wrap=True)
        while all(child.running() for child in children):
            time.sleep(0.5)
        dead = next(child for child in children if not child.running())
        code = dead.process.returncode
        failure = f"the {dead.name} exited with code {code}: {dead.last_words()} (log: {dead.log_path})"
    except KeyboardInterrupt:
        console.print("stopping ...")
        failure = None
    finally:
        stop_all(children)
    if failure is not None:  # the embedded server it started is stopped at exit (release_server)
        raise fail(failure)
