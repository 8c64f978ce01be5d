"""Errors of access control: failed authentication (401) and rate limiting (429)."""

from __future__ import annotations

from cloud_image_service.domain.errors import ServiceError

REALM = "cloud-image-service"


def _quoted(text: str) -> str:
    """A value safe inside an auth-param's double quotes (RFC 9110 quoted-string)."""
    return "".join(c for c in text if c.isprintable() and c not in '"\\')


class Unauthorized(ServiceError):
    """Missing or bad credentials; `scheme` names the challenge (Bearer or ApiKey)."""

    status_code = 401
    code = "unauthorized"

    def __init__(
        self, message: str, *, scheme: str = "Bearer", error: str | None = "invalid_token"
    ) -> None:
        super().__init__(message)
        self.scheme = scheme
        self.error = error

    def headers(self) -> dict[str, str]:
        """The challenge; RFC 6750 wants no error code when credentials are simply absent."""
        params = [f'realm="{REALM}"']
        if self.error is not None:
            params.append(f'error="{self.error}"')
            params.append(f'error_description="{_quoted(self.message)}"')
        return {"WWW-Authenticate": f"{self.scheme} {', '.join(params)}"}


class TooManyRequests(ServiceError):
    """The caller used up its requests of the current window."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, limit: str, retry_after: int) -> None:
        super().__init__(f"rate limit of {limit} exceeded; retry in {retry_after} s")
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
