"""A cap on request bodies: the API takes small JSON, never image bytes."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from cloud_image_service.api.errors import error_response

MAX_BODY_BYTES = 64 * 1024  # an upload request with 20 tags and a long description is ~5 KiB


class BodySizeLimit:
    """Pure ASGI: a declared Content-Length above the cap is a 413 before anything is read."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._declared(scope) > self.max_bytes:
            message = f"request body is larger than {self.max_bytes} bytes; image bytes go to S3"
            await error_response(413, "payload_too_large", message)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _declared(scope: Scope) -> int:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0
