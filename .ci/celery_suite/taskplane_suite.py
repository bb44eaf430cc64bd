"""The fixtures Celery's integration suite takes from ``celery.contrib.pytest``, on a taskplane app: its conftest
imports them from here instead (the one change to the suite that docs/migration.md's step 2 is: the app is a
Taskplane's). The app gets the suite's own ``celery_config``; the session worker is Celery's in-process worker
(as in the plain run) on that app, so it runs taskplane's consumer, transport, bootstep and task class."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import celery.contrib.testing.tasks  # noqa: F401 - celery.ping, which the test worker's start-up check sends
import pytest
from celery.contrib.testing import worker

from taskplane import Taskplane


def taskplane_app(config: Mapping[str, Any]) -> Any:
    """A taskplane app (its Celery app) with the suite's ``celery_config``."""
    app = Taskplane("celery-suite")
    app.celery.conf.update(config)
    app.check_celery_config()
    return app.celery


@pytest.fixture(scope="session")
def celery_session_app(celery_config: Mapping[str, Any]) -> Iterator[Any]:
    """The session's taskplane app, current and default (as Celery's fixture makes its test app)."""
    app = taskplane_app(celery_config)
    app.set_default()
    app.set_current()
    yield app


@pytest.fixture
def celery_app(celery_config: Mapping[str, Any]) -> Iterator[Any]:
    """A new taskplane app for each test, as Celery's fixture makes a new app each time (a test may change
    its settings)."""
    yield taskplane_app(celery_config)


@pytest.fixture(scope="session")
def celery_session_worker(
    celery_session_app: Any,
    celery_includes: Sequence[str],
    celery_class_tasks: Sequence[Any],
    celery_worker_pool: Any,
    celery_worker_parameters: Mapping[str, Any],
) -> Iterator[Any]:
    """Celery's in-process test worker on the taskplane app (taskplane's consumer, transport and bootstep)."""
    for module in celery_includes:
        celery_session_app.loader.import_task_module(module)
    for class_task in celery_class_tasks:
        celery_session_app.register_task(class_task)
    with worker.start_worker(celery_session_app, pool=celery_worker_pool, **celery_worker_parameters) as running:
        yield running
