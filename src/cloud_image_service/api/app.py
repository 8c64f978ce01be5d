"""The FastAPI application: routers, error handlers and the process-wide runtime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from cloud_image_service import __version__
from cloud_image_service.api import (
    docs,
    errors,
    gallery,
    health,
    images,
    metrics,
    multipart,
    openapi,
    security,
)
from cloud_image_service.api.access import AccessLog
from cloud_image_service.api.gate import StoreGate
from cloud_image_service.api.limits import BodySizeLimit
from cloud_image_service.auth.authenticator import check_auth_mode
from cloud_image_service.config import Settings
from cloud_image_service.observability.tracing import setup_tracing
from cloud_image_service.runtime import Runtime, build_runtime

log = logging.getLogger(__name__)

DESCRIPTION = """
Presigned S3 uploads and downloads with image metadata in DynamoDB.
The service never touches image bytes: clients PUT to `upload_url` and GET `download_url`.
"""


def _announce(runtime: Runtime) -> None:
    settings = runtime.settings
    log.info(security.describe_cors(settings.cors_origins, settings.cors_allow_loopback))
    if not settings.is_development and settings.cors_origins:
        missing = runtime.bucket.origins_not_allowed(settings.cors_origins)
        if missing:
            log.warning(
                "bucket %s does not allow %s in its CORS rules: browsers there cannot upload "
                "or download; run `cloud-image-service init` to set them",
                settings.bucket,
                ", ".join(missing),
            )
    if settings.auth_mode == "none":
        log.warning("authentication is off (CIS_AUTH_MODE=none): any caller acts as any user")
    else:
        log.info("authentication: %s", settings.auth_mode)
    if runtime.embedded is not None:
        log.warning(
            "backend: embedded (moto at %s). Data lives in memory and is gone when the "
            "process stops; presigned-URL rules are not enforced. Development only.",
            runtime.embedded.endpoint_url,
        )
    else:
        log.info(
            "backend: aws (S3 %s, DynamoDB %s, bucket %s, table %s)",
            settings.s3_endpoint_url or "AWS",
            settings.dynamodb_endpoint_url or "AWS",
            settings.bucket,
            settings.table,
        )


def attach(app: FastAPI, runtime: Runtime) -> None:
    """Put what the routes need on the app's state (from a runtime built once)."""
    settings = runtime.settings
    app.state.runtime = runtime
    app.state.service = runtime.service
    app.state.authenticator = runtime.authenticator
    app.state.rate_limiter = runtime.rate_limiter
    app.state.verify_limiter = runtime.verify_limiter
    app.state.multipart = runtime.multipart
    probe = runtime.storage.presign_get("images/probe", "image/png", "inline")
    app.state.gallery_csp = gallery.gallery_csp(gallery.s3_origin(probe))
    app.state.s3_gate = StoreGate("S3", settings.s3_max_concurrency, settings.aws_timeout_seconds)
    # /ready's own threads: a stalled store cannot make it wait for the request pool.
    app.state.probe_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cis-probe")


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """An app that builds its runtime at start-up and releases it at shutdown.

    With a `runtime` (AWS Lambda: built once per container), the app uses it at once
    and its lifespan does nothing, so a per-invocation lifespan costs nothing.
    """
    settings = settings or (runtime.settings if runtime is not None else Settings())
    # Before anything starts: an unsafe auth mode is refused with the reason.
    check_auth_mode(settings.auth_mode, settings.backend, settings.allow_insecure)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            yield
            return
        built = await run_in_threadpool(build_runtime, settings, settings.run_worker_in_process)
        await run_in_threadpool(_announce, built)  # it may read the bucket's CORS
        attach(app, built)
        try:
            yield
        finally:
            app.state.probe_pool.shutdown(wait=False, cancel_futures=True)
            await run_in_threadpool(built.close)

    app = FastAPI(
        title="Cloud Image Service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by docs.py from local assets, not from a CDN
        redoc_url=None,
    )
    errors.install(app)
    app.add_middleware(BodySizeLimit)
    security.install(app, settings.cors_origins, settings.cors_allow_loopback)
    app.include_router(images.router)
    app.include_router(multipart.router)
    app.include_router(multipart.params_router)
    app.include_router(health.router)
    docs.install(app)
    gallery.install(app)
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    metrics.install(app, token)
    openapi.install(app, settings)
    if runtime is not None:
        attach(app, runtime)
    setup_tracing(app, settings.tracing)
    app.add_middleware(AccessLog)  # outermost: the request id is set before anything runs
    return app
