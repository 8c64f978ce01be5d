"""The OpenAPI document as a contract: it lists only what this deployment can answer.

FastAPI documents a 422 `HTTPValidationError` on every route with parameters; ours
answer validation errors with `ErrorBody`, and a route whose only parameter is a
string path segment cannot fail validation at all. Authentication and rate limits
are settings: with authentication off the document shows no security scheme and no
401/403; with a rate limit off, no 429 on the routes it would guard.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cloud_image_service.api.openapi_errors import AUTH_ONLY, GENERIC
from cloud_image_service.config import Settings

# Routes mark the rate limit that guards them with this extension (removed from the output).
RATE_LIMIT_EXTENSION = "x-cis-rate-limit"
_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def _limits_on(settings: Settings) -> set[str]:
    on = set()
    if settings.rate_limit.strip() not in ("", "0"):
        on.add("uploads")
    if settings.verify_rate_limit.strip() not in ("", "0"):
        on.add("verify")
    return on


def _can_fail_validation(operation: dict[str, Any]) -> bool:
    parameters = operation.get("parameters", [])
    return "requestBody" in operation or any(p.get("in") == "query" for p in parameters)


def _fix_operation(operation: dict[str, Any], settings: Settings, limits: set[str]) -> None:
    responses: dict[str, Any] = operation.get("responses", {})
    generated = responses.get("422", {}).get("content", {}).get("application/json", {})
    if "HTTPValidationError" in str(generated.get("schema", "")):
        if _can_fail_validation(operation):
            responses["422"] = {
                "description": GENERIC[422],
                "content": {"application/json": {"schema": _ERROR_REF}},
            }
        else:
            del responses["422"]
    limit = operation.pop(RATE_LIMIT_EXTENSION, None)
    if limit is not None and limit not in limits:
        responses.pop("429", None)
    if settings.auth_mode == "none":
        operation.pop("security", None)
        for code in AUTH_ONLY:
            responses.pop(str(code), None)


def install(app: FastAPI, settings: Settings) -> None:
    """Replace `app.openapi` with the document of this deployment (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        limits = _limits_on(settings)
        for path in document.get("paths", {}).values():
            for operation in path.values():
                _fix_operation(operation, settings, limits)
        schemas = document.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        if settings.auth_mode == "none":
            document.get("components", {}).pop("securitySchemes", None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
