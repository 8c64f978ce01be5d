"""The Lambda handlers in-process: an HTTP API event for the API, an SQS event for the worker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cloud_image_service import lambdas
from cloud_image_service.adapters.sqs import Message
from cloud_image_service.background.worker import Worker
from cloud_image_service.domain.errors import BackendUnavailable
from cloud_image_service.local.embedded import EmbeddedServer
from tests.images import png_bytes

HOST = "abc123.execute-api.us-east-1.amazonaws.com"


def _http_event(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event."""
    http = {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7"}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": HOST, "content-type": "application/json"},
        "requestContext": {"http": http, "routeKey": "$default", "stage": "$default"},
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def _s3_event(key: str) -> str:
    """What S3 sends to SQS for an upload."""
    record = {"eventName": "ObjectCreated:Put", "s3": {"object": {"key": key}}}
    return json.dumps({"Records": [record]})


def _sqs_event(*bodies: tuple[str, str]) -> dict[str, Any]:
    """An SQS batch for the worker's Lambda: (message id, body) each."""
    records = [{"messageId": mid, "receiptHandle": f"r-{mid}", "body": b} for mid, b in bodies]
    return {"Records": records}


def _forget() -> None:
    """A new container: the cached runtime and app are built again."""
    lambdas._runtime.cache_clear()
    lambdas._api.cache_clear()


@pytest.fixture(scope="module")
def on_moto() -> Iterator[None]:
    """The handlers' settings, as a deployment gives them: the AWS endpoints are moto's.

    Names of their own: moto's state is per process, and an app server of another test in
    this worker runs an in-process worker that would take these variant jobs first.
    """
    server = EmbeddedServer()
    server.start()
    suffix = uuid.uuid4().hex[:8]
    env = {
        "CIS_BUCKET": f"lambda-{suffix}",
        "CIS_TABLE": f"lambda-images-{suffix}",
        "CIS_KEYS_TABLE": f"lambda-keys-{suffix}",
        "CIS_QUEUE_NAME": f"lambda-uploads-{suffix}",
        "CIS_BACKEND": "aws",
        "CIS_ALLOW_INSECURE": "true",
        "CIS_S3_ENDPOINT_URL": server.endpoint_url,
        "CIS_DYNAMODB_ENDPOINT_URL": server.endpoint_url,
        "CIS_SQS_ENDPOINT_URL": server.endpoint_url,
        "CIS_EVENTS": "sqs",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        _forget()
        lambdas._runtime().init_resources()  # `init`, as the deployment runs it once
        yield
        _forget()
    server.stop()


def test_the_api_handler_answers_an_http_api_event(on_moto: None) -> None:
    health = lambdas.api_handler(_http_event("GET", "/health"), None)
    assert health["statusCode"] == 200
    assert json.loads(health["body"]) == {"status": "ok"}
    body = {"user_id": "lambda", "content_type": "image/png"}
    created = lambdas.api_handler(_http_event("POST", "/images/upload", body), None)
    assert created["statusCode"] == 201, created["body"]
    upload = json.loads(created["body"])
    put = httpx.put(upload["upload_url"], content=png_bytes(), headers=upload["upload_headers"])
    assert put.status_code == 200
    # The worker's Lambda gets the S3 event through SQS: here, the event S3 would send.
    event = _sqs_event(("m-1", _s3_event(f"uploads/{upload['image_id']}")))
    assert lambdas.worker_handler(event, None) == {"batchItemFailures": []}
    image = json.loads(
        lambdas.api_handler(_http_event("GET", f"/images/{upload['image_id']}"), None)["body"]
    )
    assert image["status"] == "ready"
    assert set(image["variants"]) == {"thumb", "preview"}


def test_a_failing_message_is_reported_alone(
    on_moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(self: Worker, message: Message) -> None:
        if "broken" in message.keys[0]:
            raise BackendUnavailable("S3", "down")

    monkeypatch.setattr(Worker, "handle", down)
    event = _sqs_event(("ok", _s3_event("uploads/fine")), ("bad", _s3_event("uploads/broken")))
    assert lambdas.worker_handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert "sweep" in lambdas.sweep_handler({}, None)
