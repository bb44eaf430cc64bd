"""The team's ``celery_app.py``, after the changes docs/migration.md lists.

Before::

    app = Celery("proj", broker=REDIS_URL, backend=REDIS_URL, include=["proj.tasks"])
    app.conf.task_queues = (Queue("default"), Queue("reports"))  # with kombu's Queue
    app.conf.task_routes = {"proj.tasks.report": {"queue": "reports"}}
    app.conf.broker_transport_options = {"priority_steps": list(range(10)), "queue_order_strategy": "priority"}

After: the Taskplane app owns the Celery app; queues are declared by tier; the Redis URL comes from
``TASKPLANE_REDIS_URL``.
"""

from __future__ import annotations

from taskplane import Taskplane

tp = Taskplane("celery-style", queues={"reports": "low"})
#: The Celery app, under the name ``celery -A tests.apps.celery_style`` looks for.
app = tp.celery
celery = app
app.conf.include = ["tests.apps.celery_style.tasks"]
