"""The dashboard in a real headless Chromium: sign in, the overview of a running worker, a task's progress bar
following a real task to 100 %, a dead letter requeued from the page, a schedule paused and resumed, what a
``read`` key may not do, sign-out and revocation, and no request leaving 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ElementHandle, Page

from tests.apps.dashboard_app import FIXED, crunch, sync, tp
from tests.dashboard.conftest import Dashboard, screenshot, sign_in
from tests.workers import wait_for


def state_of(task_id: str) -> str:
    record = tp.handle(task_id).record()
    return record.state if record else "missing"


def shown(page: Page, selector: str, timeout: float = 15_000) -> ElementHandle:
    """The element, once it is visible."""
    element = page.wait_for_selector(selector, timeout=timeout)
    assert element is not None
    return element


def inside(element: ElementHandle, selector: str) -> ElementHandle:
    found = element.query_selector(selector)
    assert found is not None, selector
    return found


def confirmation(page: Page) -> str:
    """The text of the confirmation dialog, once it is open."""
    return shown(page, "dialog#confirm[open] #confirm-text").inner_text()


def test_a_wrong_key_is_refused_and_a_right_one_signs_in(page: Page, dashboard: Dashboard) -> None:
    page.goto(f"{dashboard.base}/")
    page.fill("#api-key", "tp_not-a-key")
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#sign-in-error:has-text('invalid or revoked API key')")
    assert page.is_hidden("#nav")
    sign_in(page, dashboard, dashboard.admin)
    assert page.inner_text("#who") == "ops (admin)"
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    session = cookies["taskplane_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    # The key never reaches the page's scripts or its URL
    assert "taskplane_session" not in page.evaluate("document.cookie")
    assert dashboard.admin not in page.url


def test_overview_shows_the_running_workers_queues(
    page: Page, dashboard: Dashboard, browser: Browser, tmp_path: Path
) -> None:
    for index in range(3):
        tp.enqueue("d.report", [f"r{index}"], countdown=600)  # delayed in the reports queue
    sign_in(page, dashboard, dashboard.admin)
    worker_row = shown(page, f"tr[data-worker='{dashboard.worker.hostname}']")
    assert "normal, reports" in worker_row.inner_text()
    assert page.inner_text("tr[data-queue='reports'] td:nth-child(3)") == "3"  # delayed
    for queue in ("normal", "reports"):  # both served by the one worker
        assert page.inner_text(f"tr[data-queue='{queue}'] td:nth-child(6)") == "1"
    assert page.inner_text("tr[data-queue='critical'] td:nth-child(6)") == "0"
    # Throughput of the last hour: finished tasks show within a refresh or two (metrics flush each second)
    handles = [tp.enqueue("d.report", ["now"]) for _ in range(4)]
    wait_for(lambda: all(state_of(h.id) == "succeeded" for h in handles), 30, "the reports to run")
    wait_for(lambda: int(page.inner_text("#throughput")) >= 4, 15, "the finished reports in the chart")
    screenshot(page, browser, tmp_path, "overview")
    # A phone's width: nothing but the tables' own scroll areas is wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, browser, tmp_path, "overview-phone")


def test_the_progress_bar_follows_a_running_task_to_100(
    page: Page, dashboard: Dashboard, browser: Browser, tmp_path: Path
) -> None:
    sign_in(page, dashboard, dashboard.admin)
    handle = crunch.enqueue(5, 0.6)
    page.goto(f"{dashboard.base}/#/task/{handle.id}")
    seen: set[int] = set()

    def bar() -> int:
        value = page.get_attribute("#progress", "aria-valuenow")
        seen.add(int(value or 0))
        return int(value or 0)

    wait_for(lambda: 0 < bar() < 100, 20, "the bar to move")
    wait_for(lambda: bar() == 100, 20, "the bar to reach 100")
    assert len(seen - {0, 100}) >= 2, f"the bar jumped instead of moving: {sorted(seen)}"
    page.wait_for_selector("#record [data-state='succeeded']")
    assert page.inner_text("#result") == "5"
    page.wait_for_timeout(500)  # the bar's width eases over 0.3 s
    screenshot(page, browser, tmp_path, "task")


def test_a_running_task_is_cancelled_and_terminated_from_its_page(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, dashboard.admin)
    handle = crunch.enqueue(60, 0.5)
    page.goto(f"{dashboard.base}/#/task/{handle.id}")
    page.wait_for_selector("#record [data-state='progress']")
    page.check("#terminate")
    page.click("#cancel")
    assert "terminated after 5 s" in confirmation(page)
    page.click("#confirm-ok")
    page.wait_for_selector("#record [data-state='cancelled']", timeout=30_000)
    assert page.query_selector("#cancel") is None  # a finished task offers no cancel


def test_a_dead_letter_is_requeued_from_the_page_and_runs(
    page: Page, dashboard: Dashboard, browser: Browser, tmp_path: Path
) -> None:
    handle = sync.enqueue("acme")
    wait_for(lambda: state_of(handle.id) == "dead", 30, "the task to be dead-lettered")
    sign_in(page, dashboard, dashboard.admin)
    page.goto(f"{dashboard.base}/#/dead-letters?queue=normal")
    row = shown(page, f"tr[data-letter='{handle.id}']")
    assert "RuntimeError: upstream refused acme" in row.inner_text()
    inside(row, "a").click()  # the envelope with its traceback
    page.wait_for_selector("#dlq-traceback:has-text('upstream refused acme')")
    screenshot(page, browser, tmp_path, "dead-letters")
    tp.storage.client.set(FIXED, "yes")
    inside(row, "input[type=checkbox]").check()
    page.click("#requeue-selected")
    assert confirmation(page) == "Requeue 1 dead letter selected?"
    page.click("#confirm-ok")
    page.wait_for_selector("#notice:has-text('Requeued 1 task(s).')")
    wait_for(lambda: state_of(handle.id) == "succeeded", 30, "the requeued task to run")
    assert tp.dead_letters.get(handle.id) is None
    page.wait_for_selector("#dlq-list:has-text('No dead letter here.')")


def test_requeue_by_filter_states_how_many(page: Page, dashboard: Dashboard) -> None:
    handles = [sync.enqueue(f"bulk{index}") for index in range(3)]
    wait_for(lambda: all(state_of(h.id) == "dead" for h in handles), 30, "three dead letters")
    sign_in(page, dashboard, dashboard.admin)
    page.goto(f"{dashboard.base}/#/dead-letters?queue=normal&task=d.sync")
    page.wait_for_selector("tr[data-letter]")
    page.click("#requeue-all")
    assert confirmation(page).startswith("Requeue 3 dead letters matching the filter")
    page.click("dialog button[value=cancel]")  # cancelled: nothing moves
    assert tp.dead_letters.count() == 3


def test_a_schedule_is_paused_and_resumed_from_the_page(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, dashboard.admin)
    page.goto(f"{dashboard.base}/#/schedules")
    row = "tr[data-schedule='hourly-report']"
    page.click(f"{row} button.pause-resume")
    page.wait_for_selector(f"{row}[data-paused='true']")
    assert tp.schedules.status("hourly-report").paused
    page.click(f"{row} button.pause-resume")
    page.wait_for_selector(f"{row}[data-paused='false']")
    assert not tp.schedules.status("hourly-report").paused
    page.click(f"{row} button.run-now")
    notice = shown(page, "#notice:has-text('Fired hourly-report')")
    task_id = notice.inner_text().split("task ")[1].rstrip(".")
    wait_for(lambda: state_of(task_id) == "succeeded", 30, "the fired task to run")


def forged(page: Page, path: str, body: dict[str, Any], csrf: bool) -> dict[str, Any]:
    """A POST from inside the signed-in page (cookie attached), with or without the CSRF header."""
    script = """async ([path, body, csrf]) => {
        const headers = {"Content-Type": "application/json"};
        if (csrf) {
            const cookie = document.cookie.split("; ").find(c => c.startsWith("taskplane_csrf="));
            headers["X-CSRF-Token"] = cookie.split("=")[1];
        }
        const init = {method: "POST", credentials: "same-origin", headers, body: JSON.stringify(body)};
        const response = await fetch(path, init);
        return {status: response.status, body: await response.json()};
    }"""
    result: dict[str, Any] = page.evaluate(script, [path, body, csrf])
    return result


def test_a_read_key_sees_no_requeue_and_forged_posts_are_refused(page: Page, dashboard: Dashboard) -> None:
    handle = sync.enqueue("readonly")
    wait_for(lambda: state_of(handle.id) == "dead", 30, "a dead letter")
    sign_in(page, dashboard, dashboard.read)
    page.goto(f"{dashboard.base}/#/dead-letters?queue=normal")
    page.wait_for_selector(f"tr[data-letter='{handle.id}']")
    assert page.query_selector("#requeue-selected") is None and page.query_selector("#requeue-all") is None
    assert page.query_selector("tr[data-letter] input[type=checkbox]") is None
    page.goto(f"{dashboard.base}/#/schedules")
    page.wait_for_selector("tr[data-schedule='hourly-report']")
    assert page.query_selector("button.pause-resume") is None
    selection = {"ids": [handle.id]}
    refused = forged(page, "api/v1/dead-letters/requeue", selection, csrf=True)
    assert refused["status"] == 403 and refused["body"]["error"]["code"] == "forbidden"
    # Without the CSRF token even an admin session is refused
    page.click("#sign-out")
    sign_in(page, dashboard, dashboard.admin)
    no_token = forged(page, "api/v1/dead-letters/requeue", selection, csrf=False)
    assert no_token["status"] == 403 and no_token["body"]["error"]["code"] == "csrf"
    assert tp.dead_letters.get(handle.id) is not None  # nothing was requeued


def test_sign_out_and_a_revoked_key_end_the_session(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, dashboard.admin)
    page.click("#sign-out")
    page.wait_for_selector("#sign-in")
    assert "taskplane_session" not in {cookie["name"] for cookie in page.context.cookies()}
    key, token = tp.api_keys.create("short-lived", ["read"])
    sign_in(page, dashboard, token)
    page.wait_for_selector("tr[data-queue='normal']")
    tp.api_keys.revoke(key.id)
    # The overview refreshes every 2 s: its next request is refused and the page asks to sign in again
    page.wait_for_selector("#sign-in-error:has-text('Your session ended')", timeout=10_000)
    assert "taskplane_session" not in {cookie["name"] for cookie in page.context.cookies()}


def test_no_request_leaves_127_0_0_1(page: Page, dashboard: Dashboard) -> None:
    handle = crunch.enqueue(2, 0.1)
    sign_in(page, dashboard, dashboard.admin)
    for view in ("#/", "#/tasks", f"#/task/{handle.id}", "#/dead-letters", "#/schedules"):
        page.goto(f"{dashboard.base}/{view}")
        page.wait_for_load_state("networkidle")
    page.goto(f"{dashboard.base}/docs")  # Swagger UI from the package, not a CDN
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert dashboard.requests, "the request log is empty"
    outside = [
        url
        for url in dashboard.requests
        if not url.startswith(("http://127.0.0.1:", "data:", "blob:http://127.0.0.1:"))
    ]
    assert outside == [], json.dumps(outside)
