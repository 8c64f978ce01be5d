"""Domain exceptions: each carries its HTTP status and a machine-readable code."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the API turns into a JSON response."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        """Extra response headers (e.g. Retry-After)."""
        return {}


class BadRequest(ServiceError):
    status_code = 400
    code = "bad_request"


class InvalidCursor(BadRequest):
    code = "invalid_cursor"


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class ImageNotFound(ServiceError):
    status_code = 404
    code = "image_not_found"

    def __init__(self, image_id: str) -> None:
        super().__init__(f"image {image_id!r} not found")
        self.image_id = image_id


class NotUploaded(ServiceError):
    status_code = 409
    code = "not_uploaded"

    def __init__(self, image_id: str) -> None:
        super().__init__(f"image {image_id!r} has no uploaded object yet; upload it first")


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class VerificationInProgress(ServiceError):
    """Another verifier holds the image's claim: its verdict comes soon."""

    status_code = 409
    code = "verification_in_progress"

    def __init__(self, image_id: str, retry_after: int) -> None:
        super().__init__(
            f"image {image_id!r} is being verified by another request; retry in {retry_after} s"
        )
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class VariantNotFound(ServiceError):
    status_code = 404
    code = "variant_not_found"

    def __init__(self, name: str, configured: tuple[str, ...]) -> None:
        names = ", ".join(configured) or "none"
        super().__init__(f"variant {name!r} is not configured; the variants are: {names}")


class VariantNotReady(ServiceError):
    status_code = 409
    code = "variant_not_ready"

    def __init__(self, image_id: str, name: str) -> None:
        super().__init__(f"variant {name!r} of image {image_id!r} is being made; retry shortly")

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "2"}


class MultipartNotFound(ServiceError):
    """No pending multipart upload of the caller has this id and key (nothing else is said)."""

    status_code = 404
    code = "upload_not_found"

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"no multipart upload {upload_id!r} with this key")


class NotTrashed(ServiceError):
    status_code = 409
    code = "not_trashed"

    def __init__(self, image_id: str) -> None:
        super().__init__(f"image {image_id!r} is not in the trash")


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class ValidationFailed(ServiceError):
    status_code = 422
    code = "validation_failed"


class BackendUnavailable(ServiceError):
    """S3 or DynamoDB cannot be reached or answers with a server-side error."""

    status_code = 503
    code = "backend_unavailable"

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"{backend} is unavailable: {detail}")
        self.backend = backend

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class VerificationBusy(ServiceError):
    """The process's memory budget for decoding stayed taken for too long."""

    status_code = 503
    code = "verification_busy"

    def __init__(self, needed_mb: float, budget_mb: int, retry_after: int = 2) -> None:
        super().__init__(
            f"verification needs {needed_mb:.0f} MB of the {budget_mb} MB decoding budget, "
            "which other verifications hold; retry shortly"
        )
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
