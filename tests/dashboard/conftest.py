"""A real headless Chromium (Debian's ``chromium``, installed by ``make tools``) driven by Playwright, the
dashboard's app served over real HTTP, and a real worker."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from taskplane.api import create_app
from tests.api_server import serve_in_thread
from tests.workers import StartWorker, WorkerProcess

APP = "tests.apps.dashboard_app:tp"
#: Screenshots also go to docs/images when this is set (docs/dashboard.md shows them).
DOCS_SCREENSHOTS = "TASKPLANE_DOCS_SCREENSHOTS"
DOCS_IMAGES = Path(__file__).resolve().parent.parent.parent / "docs" / "images"
#: Every host name resolves nowhere but 127.0.0.1: the browser runs with the network off.
NETWORK_OFF = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def chromium_path() -> str:
    found = os.environ.get("TASKPLANE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("no chromium on PATH: `make tools` installs Debian's chromium (as root)")
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--no-first-run", NETWORK_OFF],
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Dashboard:
    """The served dashboard, its worker, and keys of each kind."""

    base: str
    worker: WorkerProcess
    admin: str
    read: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def dashboard(redis_url: str, start_worker: StartWorker) -> Iterator[Dashboard]:
    # Imported here, not at the top: a conftest is loaded before the session's server is named in the env.
    from tests.apps.dashboard_app import tp

    worker = start_worker(app=APP, queues="normal,reports", concurrency=2)
    _, admin = tp.api_keys.create("ops", ["admin"])
    _, read = tp.api_keys.create("viewer", ["read"])
    with serve_in_thread(create_app(tp)) as base:
        yield Dashboard(base, worker, admin, read)


@pytest.fixture
def page(browser: Browser, dashboard: Dashboard) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    opened.on("request", lambda request: dashboard.requests.append(request.url))
    opened.set_default_timeout(15_000)
    try:
        yield opened
    finally:
        context.close()


def sign_in(page: Page, dashboard: Dashboard, token: str) -> None:
    page.goto(f"{dashboard.base}/")
    page.fill("#api-key", token)
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#nav:not([hidden])")


def distinct_colours(browser: Browser, png: bytes) -> int:
    """How many different colours the PNG has, decoded by the browser in a page of its own."""
    context = browser.new_context()
    try:
        blank = context.new_page()
        script = """async (data) => {
            const image = new Image();
            image.src = "data:image/png;base64," + data;
            await image.decode();
            const canvas = document.createElement("canvas");
            canvas.width = image.width; canvas.height = image.height;
            const ctx = canvas.getContext("2d");
            ctx.drawImage(image, 0, 0);
            const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            const seen = new Set();
            for (let i = 0; i < pixels.length; i += 4) {
                seen.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
            }
            return seen.size;
        }"""
        count: Any = blank.evaluate(script, base64.b64encode(png).decode())
        return int(count)
    finally:
        context.close()


def screenshot(page: Page, browser: Browser, tmp_path: Path, name: str) -> Path:
    """Save a screenshot (and to docs/images when asked); fails if it came out blank."""
    target = tmp_path / f"dashboard-{name}.png"
    png = page.screenshot(path=str(target), full_page=True)
    assert distinct_colours(browser, png) > 20, f"screenshot {name} is blank"
    if os.environ.get(DOCS_SCREENSHOTS):
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, DOCS_IMAGES / target.name)
    return target
