"""One place that turns every failure into a JSON error body; never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud_image_service.api.security import COMMON_HEADERS, STRICT_CSP
from cloud_image_service.domain.errors import ServiceError
from cloud_image_service.observability.logs import REQUEST_ID

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The error body every failure shares: {code, message, detail}."""
    body = {"code": code, "message": message, "detail": message, "request_id": REQUEST_ID.get()}
    return JSONResponse(body, status_code=status, headers=headers)


def describe_validation(errors: Sequence[Any]) -> str:
    """'field: problem; other: problem' from pydantic's error list."""
    parts = []
    for error in errors:
        location = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        parts.append(f"{'.'.join(location) or 'request'}: {message}")
    return "; ".join(parts)


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if exc.status_code >= 500:
        log.warning("%s: %s", exc.code, exc.message)
    return error_response(exc.status_code, exc.code, exc.message, exc.headers())


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid_request", describe_validation(exc.errors()))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, str(exc.detail), headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    # This response is made outside the middleware stack: it adds its own headers.
    headers = COMMON_HEADERS | {"Content-Security-Policy": STRICT_CSP}
    return error_response(500, "internal_error", "internal error; it has been logged", headers)


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
