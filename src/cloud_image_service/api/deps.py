"""FastAPI dependencies: the process-wide service, the authenticated caller, rate limits.

Each hop to the thread pool costs more CPU than most of a request (a thread switch each
way, AnyIO's limiter and cancel scopes): dependencies with no I/O are `async def`, and
the ones that may block hop only when they do (an API-key lookup, a JWKS fetch). Rate
limits are deferred (`Limit`), so a route counts the hit in the same hop as its own work.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from cloud_image_service.api.gate import s3_slot
from cloud_image_service.auth.authenticator import API_KEY_HEADER, Authenticator
from cloud_image_service.auth.caller import Caller
from cloud_image_service.auth.errors import TooManyRequests
from cloud_image_service.auth.ratelimit import RateLimiter, caller_key
from cloud_image_service.domain.ports import Admission
from cloud_image_service.domain.service import ImageService
from cloud_image_service.observability.metrics import RATE_LIMITED

# Declared on every protected route so the OpenAPI document lists both schemes and
# Swagger UI's Authorize button works; auto_error=False because the Authenticator,
# not FastAPI, decides which one the configured mode needs.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="JWT access token (CIS_AUTH_MODE=jwt).",
)
api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="ApiKey",
    description="API key from `cloud-image-service keys create` (CIS_AUTH_MODE=api-key).",
)


async def get_service(request: Request) -> ImageService:
    """The process-wide service built at start-up."""
    service: ImageService = request.app.state.service
    return service


async def caller_dependency(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    _api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Caller:
    """Dependency: the authenticated caller, via `app.state.authenticator`.

    An API-key lookup or a JWKS fetch blocks: those modes run on the thread pool.
    """
    authenticator: Authenticator = request.app.state.authenticator
    if authenticator.may_block:
        caller = await run_in_threadpool(authenticator.authenticate, request.headers)
    else:
        caller = authenticator.authenticate(request.headers)
    if caller.user_id is not None:  # the access log names callers by a hash, never in clear
        request.state.caller = hashlib.sha256(caller.user_id.encode()).hexdigest()[:16]
    return caller


async def rate_limited_caller(
    request: Request, caller: Annotated[Caller, Depends(caller_dependency)]
) -> Caller:
    """Dependency: the caller, after counting one hit on `app.state.rate_limiter` (None: off)."""
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
        host = request.client.host if request.client else None
        await run_in_threadpool(_hit, limiter, "uploads", caller_key(caller, host))
    return caller


def _hit(limiter: RateLimiter, name: str, key: str) -> None:
    try:
        limiter.hit(key)
    except TooManyRequests:
        RATE_LIMITED.labels(name).inc()
        raise


class Limit:
    """One hit of the caller on a limit, counted when the route calls it (blocking: a store)."""

    def __init__(self, limiter: RateLimiter | None, name: str, key: str) -> None:
        self.limiter = limiter
        self.name = name
        self.key = key

    def __call__(self) -> None:
        if self.limiter is not None:
            _hit(self.limiter, self.name, self.key)

    def admission(self) -> Admission | None:
        """The hit, for the write it guards to count (None: no limit)."""
        return None if self.limiter is None else self.limiter.admission(self.key)

    def refused(self) -> None:
        """Count a refusal of this limit in the metrics."""
        RATE_LIMITED.labels(self.name).inc()


def _key(request: Request, caller: Caller) -> str:
    return caller_key(caller, request.client.host if request.client else None)


async def upload_limit(
    request: Request, caller: Annotated[Caller, Depends(caller_dependency)]
) -> Limit:
    """Dependency: the caller's CIS_RATE_LIMIT, for the route to count in its own hop."""
    return Limit(request.app.state.rate_limiter, "uploads", _key(request, caller))


async def verify_limit(
    request: Request, caller: Annotated[Caller, Depends(caller_dependency)]
) -> Limit:
    """Dependency: the caller's verification limit, for the route to apply when it verifies."""
    return Limit(request.app.state.verify_limiter, "verify", _key(request, caller))


Service = Annotated[ImageService, Depends(get_service)]
CallerDep = Annotated[Caller, Depends(caller_dependency)]
# Uploads cost storage: they count against CIS_RATE_LIMIT.
LimitedCaller = Annotated[Caller, Depends(rate_limited_caller)]
UploadLimitDep = Annotated[Limit, Depends(upload_limit)]
VerifyLimitDep = Annotated[Limit, Depends(verify_limit)]
# Routes that may call S3 wait for a slot of the S3 gate first (see gate.py).
S3Slot = Depends(s3_slot)
