"""FastAPI dependencies: the process-wide service, the authenticated caller, rate limits."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from cloud_image_service.api.gate import s3_slot
from cloud_image_service.auth.authenticator import API_KEY_HEADER, Authenticator
from cloud_image_service.auth.caller import Caller
from cloud_image_service.auth.errors import TooManyRequests
from cloud_image_service.auth.ratelimit import RateLimiter, caller_key
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


def get_service(request: Request) -> ImageService:
    """The process-wide service built at start-up."""
    service: ImageService = request.app.state.service
    return service


def caller_dependency(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    _api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Caller:
    """Dependency: the authenticated caller, via `app.state.authenticator`.

    Sync on purpose: an API-key lookup or a JWKS fetch blocks, so FastAPI runs it on
    the thread pool.
    """
    authenticator: Authenticator = request.app.state.authenticator
    caller = authenticator.authenticate(request.headers)
    if caller.user_id is not None:  # the access log names callers by a hash, never in clear
        request.state.caller = hashlib.sha256(caller.user_id.encode()).hexdigest()[:16]
    return caller


def rate_limited_caller(
    request: Request, caller: Annotated[Caller, Depends(caller_dependency)]
) -> Caller:
    """Dependency: the caller, after counting one hit on `app.state.rate_limiter` (None: off)."""
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
        _hit(
            limiter, "uploads", caller_key(caller, request.client.host if request.client else None)
        )
    return caller


def _hit(limiter: RateLimiter, name: str, key: str) -> None:
    try:
        limiter.hit(key)
    except TooManyRequests:
        RATE_LIMITED.labels(name).inc()
        raise


class VerifyLimit:
    """Counts one verification of the caller against CIS_VERIFY_RATE_LIMIT (a decode each)."""

    def __init__(self, limiter: RateLimiter | None, key: str) -> None:
        self.limiter = limiter
        self.key = key

    def __call__(self) -> None:
        if self.limiter is not None:
            _hit(self.limiter, "verify", self.key)


def verify_limit(
    request: Request, caller: Annotated[Caller, Depends(caller_dependency)]
) -> VerifyLimit:
    """Dependency: the caller's verification limit, for the route to apply when it verifies."""
    host = request.client.host if request.client else None
    return VerifyLimit(request.app.state.verify_limiter, caller_key(caller, host))


Service = Annotated[ImageService, Depends(get_service)]
CallerDep = Annotated[Caller, Depends(caller_dependency)]
# Uploads cost storage: they count against CIS_RATE_LIMIT.
LimitedCaller = Annotated[Caller, Depends(rate_limited_caller)]
VerifyLimitDep = Annotated[VerifyLimit, Depends(verify_limit)]
# Routes that may call S3 wait for a slot of the S3 gate first (see gate.py).
S3Slot = Depends(s3_slot)
