"""A cap on request bodies: the API takes small JSON, never image bytes."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024  # an upload request with 20 tags and a long description is ~5 KiB


class BodySizeLimit:
    """Pure ASGI: a declared Content-Length above the cap is a 413 before anything is read."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._declared(scope) > self.max_bytes:
            await self._refuse(send)
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

    async def _refuse(self, send: Send) -> None:
        message = f"request body is larger than {self.max_bytes} bytes; image bytes go to S3"
        body = json.dumps(
            {"code": "payload_too_large", "message": message, "detail": message}
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
