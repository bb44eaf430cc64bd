"""The demo's tasks: progress, retries into the dead letters, a countdown, a critical job."""

from __future__ import annotations

import time

from taskplane import Retry, Taskplane, progress

tp = Taskplane("taskplane-demo", queues={"reports": "low"})


@tp.task(name="demo.resize_image", queue="normal")
def resize_image(image_id: int, steps: int = 5) -> dict[str, int]:
    """Pretend to resize an image, reporting progress per step."""
    for step in range(1, steps + 1):
        time.sleep(0.05)
        progress(step, steps, step=f"pass {step}")
    return {"image_id": image_id, "width": 640}


@tp.task(name="demo.call_flaky_api", queue="high", retry=Retry(max_retries=2, backoff=(0.5, 1.0), jitter=False))
def call_flaky_api(endpoint: str) -> str:
    """Always fails: retried twice, then dead-lettered."""
    raise ConnectionError(f"{endpoint} answered 503")


@tp.task(name="demo.send_receipt", queue="critical")
def send_receipt(order_id: int) -> str:
    """A critical job: overtakes the normal backlog."""
    return f"receipt for order {order_id} sent"


@tp.task(name="demo.build_report", queue="reports", rate_limit="5/s")
def build_report(day: int) -> int:
    """A low-tier, cluster-wide rate-limited job."""
    return day * 10
