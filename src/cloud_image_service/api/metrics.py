"""`GET /metrics`: Prometheus text.

Requests are counted by route template, method and status class by the access log
(api/access.py); `/metrics` itself and unmatched paths are not. With CIS_METRICS_TOKEN set,
a scrape must send `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from cloud_image_service.auth.errors import Unauthorized

METRICS_PATH = "/metrics"


def install(app: FastAPI, token: str | None) -> None:
    """Add the scrape route."""

    @app.get(METRICS_PATH, include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise Unauthorized("a metrics token is needed (CIS_METRICS_TOKEN)")
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
