"""Liveness and readiness probes: neither ever waits on a stalled store.

`/health` runs on the event loop and calls nothing. `/ready` pings each store on a
small pool of its own, each within CIS_READY_TIMEOUT_SECONDS, and names the store
that failed or did not answer in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cloud_image_service.api.schemas import Health, Readiness
from cloud_image_service.domain.errors import BackendUnavailable
from cloud_image_service.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/health", operation_id="health", response_model=Health)
async def health() -> Health:
    """Liveness: the process answers (no store is called, no thread is needed)."""
    return Health(status="ok")


async def _probe(pool: ThreadPoolExecutor, ping: Callable[[], None], timeout: float) -> str:
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(pool, ping), timeout)
    except TimeoutError:
        return f"no answer within {timeout:g} s (slow or stalled)"
    except BackendUnavailable as exc:
        return exc.message
    return "ok"


@router.get(
    "/ready",
    operation_id="readiness",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A store failed or is too slow."}},
)
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 when S3 and DynamoDB both answer in time, else 503 naming the store."""
    runtime: Runtime = request.app.state.runtime
    pool: ThreadPoolExecutor = request.app.state.probe_pool
    timeout = runtime.settings.ready_timeout_seconds
    s3, dynamodb = await asyncio.gather(
        _probe(pool, runtime.storage.ping, timeout),
        _probe(pool, runtime.catalog.ping, timeout),
    )
    checks = {"s3": s3, "dynamodb": dynamodb}
    healthy = all(result == "ok" for result in checks.values())
    body = Readiness(status="ok" if healthy else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
