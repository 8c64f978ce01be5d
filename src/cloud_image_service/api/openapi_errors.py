"""Error responses as the OpenAPI document shows them: per route, only what it can return."""

from __future__ import annotations

from typing import Any

from cloud_image_service.api.schemas import ErrorBody

# One line for each status, unless a route says more precisely what it means there.
GENERIC = {
    400: "Bad request.",
    401: "Missing or invalid credential (authentication on).",
    403: "`user_id` names another user and the caller is not an admin.",
    404: "No such image, or it belongs to another user.",
    409: "Conflict with the image's state.",
    413: "Request body over 64 KiB.",
    422: "A field or parameter is invalid; the message names it.",
    429: "Rate limit reached; retry after `Retry-After` seconds.",
    503: "S3 or DynamoDB is unavailable or too slow; retry after `Retry-After` seconds.",
}
# Present only when authentication is on: the document drops them when it is off.
AUTH_ONLY = frozenset({401, 403})


def errors(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each code with its one-line description.

    `described` overrides a description by status, as `e409="..."`.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        description = described.get(f"e{code}", GENERIC[code])
        responses[code] = {"model": ErrorBody, "description": description}
    return responses
