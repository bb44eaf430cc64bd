"""The operations test app with OpenTelemetry tracing on: the worker writes its spans as JSON lines to
the file named by TASKPLANE_TEST_TRACE_FILE (the test process, which imports it too, sets none)."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from taskplane.observability import tracing
from tests.apps.ops_app import tp

__all__ = ["tp"]

_trace_file = os.environ.get("TASKPLANE_TEST_TRACE_FILE")  # set for the worker only
if _trace_file:
    _provider = TracerProvider()
    _provider.add_span_processor(
        SimpleSpanProcessor(
            ConsoleSpanExporter(
                out=open(_trace_file, "a"),  # noqa: SIM115 - lives as long as the worker
                formatter=lambda span: span.to_json(indent=None) + "\n",
            )
        )
    )
    trace.set_tracer_provider(_provider)
    tracing.instrument()
