"""Optional tracing: a span per request and a child span per store call."""

from __future__ import annotations

from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cloud_image_service.api.app import create_app
from cloud_image_service.config import Settings
from cloud_image_service.observability.tracing import setup_tracing


def test_store_calls_are_spans_inside_the_request_span() -> None:
    exporter = InMemorySpanExporter()
    app = create_app(Settings(backend="embedded", worker_in_process=False))
    assert setup_tracing(app, "off", exporter=exporter)
    with TestClient(app) as client:
        exporter.clear()
        response = client.post("/images/upload", json={"user_id": "t", "content_type": "image/png"})
        assert response.status_code == 201
    spans = exporter.get_finished_spans()
    names = [span.name for span in spans]
    assert any("PutItem" in name for name in names), names  # the DynamoDB write
    request = next(span for span in spans if span.name.startswith("POST /images/upload"))
    put_item = next(span for span in spans if "PutItem" in span.name)
    assert put_item.context.trace_id == request.context.trace_id
