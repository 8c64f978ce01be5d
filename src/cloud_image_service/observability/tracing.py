"""Optional OpenTelemetry tracing (the `otel` extra; off by default).

`CIS_TRACING=otlp` exports to the collector named by the standard OTEL_EXPORTER_OTLP_*
variables; `console` prints spans (development). Each request is a span, and each call
to a store (S3, DynamoDB, SQS) a child span of it, from the botocore instrumentation.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

log = logging.getLogger(__name__)


def setup_tracing(app: FastAPI | None, mode: str, exporter: Any = None) -> bool:
    """Trace the app's requests and every store call; False when the extra is missing."""
    if mode == "off" and exporter is None:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        log.warning("CIS_TRACING=%s but the otel extra is not installed: no tracing", mode)
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": "cloud-image-service"}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif mode == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    BotocoreInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    if app is not None:
        FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    return True
