"""Progress reaches the record and Celery's result backend."""

from __future__ import annotations

from tests.apps.core_app import tp
from tests.workers import InProcessWorker


def test_progress_reaches_the_record_and_the_final_value_is_kept(
    worker_in_process: InProcessWorker, redis_url: str
) -> None:
    from tests.apps.core_app import steps

    worker_in_process(tp)
    record = steps.enqueue(500).wait(timeout=20)
    assert record.state == "succeeded"
    assert record.fields["progress_current"] == 500 and record.fields["progress_total"] == 500
    assert record.fields["progress_step"] == "step 500"
    meta = tp.celery.AsyncResult(record.id)
    assert meta.state == "SUCCESS"
