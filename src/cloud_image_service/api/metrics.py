"""`GET /metrics`: Prometheus text, HTTP metrics from prometheus-fastapi-instrumentator.

Requests are counted by route template, method and status class; `/metrics` itself is
not. With CIS_METRICS_TOKEN set, a scrape must send `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_fastapi_instrumentator import Instrumentator

from cloud_image_service.auth.errors import Unauthorized

METRICS_PATH = "/metrics"


def install(app: FastAPI, token: str | None) -> None:
    """Instrument the app and add the scrape route."""
    Instrumentator(
        should_group_status_codes=True,
        should_ignore_untemplated=True,
        excluded_handlers=[METRICS_PATH],
    ).instrument(app)

    @app.get(METRICS_PATH, include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise Unauthorized("a metrics token is needed (CIS_METRICS_TOKEN)")
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
