"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cloud_image_service.api.schemas import Readiness
from cloud_image_service.domain.service import ImageService

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness: the process answers (no store is called)."""
    return {"status": "ok"}


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def ready(request: Request) -> JSONResponse:
    """Readiness: 200 when S3 and DynamoDB both answer, else 503 naming the failure."""
    service: ImageService = request.app.state.service
    checks = service.readiness()
    healthy = all(result == "ok" for result in checks.values())
    body = Readiness(status="ok" if healthy else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
