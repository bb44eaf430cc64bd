"""The migration tests read results the Celery way, with a bare ``AsyncResult(id)``: in a user's process their
one app is the current and default app. Other tests in the same pytest worker make throwaway apps (which
become current as they are made), so each test here starts with the Celery-style app current again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def celery_style_app_is_current() -> Iterator[None]:
    """Make the Celery-style app the current and default app, as it is in the user's process (imported here,
    after the session's server is known: the app reads its Redis URL when made)."""
    from tests.apps.celery_style.celery_app import tp

    tp.celery.set_current()
    tp.celery.set_default()
    yield
