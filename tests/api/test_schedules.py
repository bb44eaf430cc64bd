"""``/api/v1/schedules`` over real HTTP."""

from __future__ import annotations

import httpx

from taskplane.api import create_app
from tests.api_server import serve_in_thread
from tests.apps.sched_app import tp


def test_schedules_api_lists_pauses_resumes_and_runs(redis_url: str) -> None:
    tp.scheduler(owner="api-test").step()
    _, admin = tp.api_keys.create("admin", ["admin"])
    _, reader = tp.api_keys.create("reader", ["read"])
    headers = {"Authorization": f"Bearer {admin}"}
    with serve_in_thread(create_app(tp)) as base, httpx.Client(base_url=f"{base}/api/v1", headers=headers) as api:
        listed = api.get("/schedules").json()
        assert listed["leader"]["owner"] == "api-test" and listed["leader"]["epoch"] == 1
        by_name = {s["name"]: s for s in listed["schedules"]}
        assert sorted(by_name) == ["every-second", "nightly", "skipper"]
        nightly = by_name["nightly"]
        assert (nightly["task"], nightly["schedule"], nightly["queue"]) == (
            "s.tick",
            "cron 0 2 * * * (Europe/Berlin)",
            "low",
        )
        assert nightly["next_run_ms"] > 0 and nightly["last_run_ms"] is None and not nightly["paused"]

        paused = api.post("/schedules/nightly/pause")
        assert paused.status_code == 200 and paused.json()["paused"] and paused.json()["next_run_ms"] is None
        assert api.get("/schedules/nightly").json()["paused"]
        ran = api.post("/schedules/nightly/run")
        assert ran.status_code == 202
        task_id = ran.json()["task_id"]
        assert tp.handle(task_id).record().state == "queued" and tp.handle(task_id).record().queue == "low"
        shown = api.get("/schedules/nightly").json()
        assert (shown["last_task_id"], shown["last_state"], shown["manual"]) == (task_id, "queued", 1)
        assert api.post("/schedules/nightly/resume").json()["paused"] is False

        missing = api.get("/schedules/nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        read_only = httpx.post(
            f"{base}/api/v1/schedules/nightly/pause", headers={"Authorization": f"Bearer {reader}"}, timeout=30
        )
        assert read_only.status_code == 403
