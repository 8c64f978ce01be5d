"""Typed errors: one class per kind of failure, chosen from the API's `code` (then its status).

Every error the SDK raises is a `CloudImageError`. An answer of the service is an `ApiError`
(with `status`, `code` and `message`); a service that cannot be reached is
`ServiceUnreachable`; a failed presigned request to S3 is a `StorageError`.
"""

from __future__ import annotations

import errno
import re
from typing import Any

import httpx


class CloudImageError(Exception):
    """Base of every error raised by `cloud_image_client`."""


class ServiceUnreachable(CloudImageError):
    """No answer from the service (connection refused, DNS, timeout), after the retries."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


class UnknownContentType(CloudImageError, ValueError):
    """Neither the bytes nor the file name tell an accepted image type: pass `content_type`."""


class ApiError(CloudImageError):
    """The service (or S3) answered with an error: `status`, `code` and `message` of its body.

    `retry_after` is the `Retry-After` header in seconds, when the answer carried one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.body = body

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status} {self.code})"


class BadRequest(ApiError):
    """400: a request the service refuses (e.g. a bad cursor, a missing `user_id`)."""


class Unauthorized(ApiError):
    """401: no credential, or a bad or expired one."""


class Forbidden(ApiError):
    """403: the credential does not allow this (e.g. another user's `user_id`)."""


class NotFound(ApiError):
    """404: no such image (or another user's, or trashed), variant or upload."""


class Conflict(ApiError):
    """409: the image is not in a state for this (e.g. `not_uploaded`, `not_trashed`)."""


class VerificationInProgress(Conflict):
    """409 `verification_in_progress`: another request verifies the image; retry later."""


class VariantNotReady(Conflict):
    """409 `variant_not_ready`: the variant is still being made; retry later."""


class PayloadTooLarge(ApiError):
    """413: the image is above the service's size limit."""


class ValidationError(ApiError):
    """422 `invalid_request`: a field the service refuses (the message names it)."""


class ImageRejected(ApiError):
    """422 `validation_failed`: the uploaded bytes failed verification; `reason` says why."""

    def __init__(self, message: str, *, image_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reason = message.removeprefix("image was rejected: ")
        self.image_id = image_id


class RateLimited(ApiError):
    """429: too many requests; `retry_after` says when to try again."""


class ServerError(ApiError):
    """5xx other than 503: a failure of the service itself."""


class BackendUnavailable(ServerError):
    """503: a store (S3 or DynamoDB) is down or slow, or the decoding budget is taken."""


class StorageError(ApiError):
    """A presigned request to S3 failed (`code` is S3's, e.g. `EntityTooLarge`)."""


_BY_CODE: dict[str, type[ApiError]] = {
    "verification_in_progress": VerificationInProgress,
    "variant_not_ready": VariantNotReady,
    "validation_failed": ImageRejected,
    "invalid_request": ValidationError,
    "backend_unavailable": BackendUnavailable,
    "verification_busy": BackendUnavailable,
    "too_many_requests": RateLimited,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationError,
    429: RateLimited,
    503: BackendUnavailable,
}


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (the delay form; an HTTP date is ignored)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_from_response(response: httpx.Response, image_id: str | None = None) -> ApiError:
    """The typed error of an API answer with an error status (`{code, message, detail}`)."""
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    code, message = "", ""
    if isinstance(body, dict):
        code = str(body.get("code") or "")
        message = str(body.get("message") or body.get("detail") or "")
    if not message:
        message = response.text.strip()[:200] or response.reason_phrase or "error"
    status = response.status_code
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else ApiError
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code or f"http_{status}",
        "retry_after": retry_after(response),
        "body": body,
    }
    if cls is ImageRejected:
        return ImageRejected(message, image_id=image_id, **kwargs)
    return cls(message, **kwargs)


_XML_FIELD = re.compile(r"<(Code|Message)>([^<]*)</\1>")


def storage_error(response: httpx.Response, what: str) -> StorageError:
    """The error of a presigned S3 request, from S3's XML body (`<Code>`, `<Message>`)."""
    fields = dict(_XML_FIELD.findall(response.text[:4000]))
    code = fields.get("Code") or f"http_{response.status_code}"
    message = f"{what}: S3 answered {response.status_code} {code}"
    if fields.get("Message"):
        message += f": {fields['Message']}"
    return StorageError(
        message, status=response.status_code, code=code, retry_after=retry_after(response)
    )


def describe_transport_error(exc: httpx.TransportError) -> str:
    """`connection refused`, `timed out`, ...: the cause of a transport error, in a few words."""
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    cause: BaseException | None = exc
    while cause is not None:
        number = getattr(cause, "errno", None)
        if number == errno.ECONNREFUSED:
            return "connection refused"
        if number is not None and isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "name not resolved"
    return text or type(exc).__name__
