"""AWS Lambda entry points: the API (behind an HTTP API), the worker (SQS), the sweep (a schedule).

One code path with `serve` and `worker`: the same runtime and app, adapted by Mangum for
API Gateway's HTTP API events. The runtime is built once per container, at the first
invocation (not per request: Mangum would run the app's lifespan on every invocation).
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from mangum import Mangum

from cloud_image_service.adapters.sqs import Message, object_keys
from cloud_image_service.api.app import create_app
from cloud_image_service.config import Settings
from cloud_image_service.domain.errors import ServiceError
from cloud_image_service.observability.logs import configure as configure_logs
from cloud_image_service.runtime import Runtime, build_runtime

log = logging.getLogger(__name__)


@cache
def _runtime() -> Runtime:
    settings = Settings()
    configure_logs(settings.log_level, settings.log_style)
    return build_runtime(settings)


@cache
def _api() -> Mangum:
    return Mangum(create_app(runtime=_runtime()), lifespan="off")


def api_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway HTTP API (payload 2.0) -> the FastAPI app."""
    response: dict[str, Any] = _api()(event, context)
    return response


def worker_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch of S3 upload events; failed messages are reported, not the whole batch."""
    worker = _runtime().make_worker()
    failures = []
    for record in event.get("Records", []):
        message = Message(record.get("receiptHandle", ""), object_keys(record.get("body", "")))
        try:
            worker.handle(message)
        except ServiceError as exc:
            log.warning("event kept for a retry: %s", exc.message)
            failures.append({"itemIdentifier": record["messageId"]})
    if event.get("Records"):
        worker.run_jobs_once()  # variants of what just turned ready
    return {"batchItemFailures": failures}


def sweep_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A scheduled sweep, then the variant jobs that are due."""
    runtime = _runtime()
    report = runtime.make_sweeper().sweep()
    runtime.make_worker().run_jobs_once()
    return {"sweep": report.__dict__}
