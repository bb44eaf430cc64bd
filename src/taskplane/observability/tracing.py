"""OpenTelemetry spans from enqueue to execution (extra ``taskplane[otel]``).

The work is done by OpenTelemetry's own Celery instrumentation: a publish span (``apply_async/<task>``)
whose context travels in the message headers, and a run span (``run/<task>``) that is its child in the
worker, also when the message waited in the delayed store or was retried. taskplane only installs it.
"""

from __future__ import annotations

from typing import Any

from taskplane.core.errors import ConfigurationError


def instrument(tracer_provider: Any = None) -> None:
    """Trace enqueues and task runs in this process (idempotent).

    Call it once in every process that enqueues or runs tasks -- in your app module is simplest, after
    your tracer provider and exporter are set up (or pass ``tracer_provider``). Prefork pool processes
    inherit it; the SDK's batch span processor restarts its export thread after the fork.

    Raises:
        ConfigurationError: the otel extra is not installed.
    """
    try:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
    except ImportError:
        raise ConfigurationError("tracing needs the otel extra: pip install 'taskplane[otel]'") from None
    instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=tracer_provider)


def uninstrument() -> None:
    """Stop tracing in this process (undoes :func:`instrument`)."""
    try:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
    except ImportError:
        return
    instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
