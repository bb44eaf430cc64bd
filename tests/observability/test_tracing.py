"""OpenTelemetry: a span around an enqueue in this process and the task's run span in a real prefork worker
are one trace; the run span is the child of the publish span, also after a countdown and a retry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from taskplane.observability import tracing
from tests.apps.ops_app import add, flaky
from tests.workers import StartWorker, wait_for


@pytest.fixture
def producer_spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.instrument(tracer_provider=provider)
    try:
        yield provider, exporter
    finally:
        tracing.uninstrument()


def worker_spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_enqueue_and_execution_are_one_trace(
    start_worker: StartWorker, producer_spans: tuple[TracerProvider, InMemorySpanExporter], tmp_path: Path
) -> None:
    provider, exporter = producer_spans
    trace_file = tmp_path / "worker-spans.jsonl"
    start_worker(
        queues="ops",
        concurrency=2,
        env={"TASKPLANE_TEST_TRACE_FILE": str(trace_file)},
        app="tests.apps.traced_app:tp",
    )
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /orders") as request_span:
        now = add.enqueue(1, 2)
        later = add.enqueue_with((3, 4), countdown=0.5)
        retried = flaky.enqueue("ops:traced-flaky")
    for handle in (now, later, retried):
        handle.result(timeout=30)

    published = {
        (span.attributes or {})["messaging.message.id"]: span
        for span in exporter.get_finished_spans()
        if span.name.startswith("apply_async/")
    }
    assert set(published) >= {now.id, later.id, retried.id}
    trace_id = f"0x{request_span.get_span_context().trace_id:032x}"

    def runs() -> list[dict[str, Any]]:
        spans = [span for span in worker_spans(trace_file) if span["name"].startswith("run/")]
        return spans if len(spans) >= 5 else []  # add twice, flaky three attempts

    parents_checked = 0
    for span in wait_for(runs, 20, "the worker's run spans"):
        task_id = span["attributes"].get("messaging.message.id")
        assert span["context"]["trace_id"] == trace_id, span
        if task_id in (now.id, later.id):
            context = published[task_id].get_span_context()
            assert context is not None and span["parent_id"] == f"0x{context.span_id:016x}"
            parents_checked += 1
    assert parents_checked == 2
    names = {span["name"] for span in runs()}
    assert names == {"run/ops.add", "run/ops.flaky"}
