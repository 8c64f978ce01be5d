"""A cap on request bodies, counted in bytes received: the API takes small JSON, never images.

Outermost of the app, before authentication: a body that passes the cap is answered
413 as soon as the cap is crossed, whether it declared a Content-Length or came
chunked, and nothing of it is kept. Bodies under the cap are buffered (64 KiB at most)
and replayed to the app.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_image_service.api.errors import error_response

MAX_BODY_BYTES = 64 * 1024  # an upload request with 20 tags and a long description is ~5 KiB


class BodySizeLimit:
    """Pure ASGI: read the body up to the cap first; past it, a JSON 413 at once."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._declared(scope) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        body: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            body.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(body, None, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body is larger than {self.max_bytes} bytes; image bytes go to S3"
        # Connection: close, so the server does not read the rest of the body to reuse it.
        response = error_response(413, "payload_too_large", message, {"Connection": "close"})
        await response(scope, receive, send)

    @staticmethod
    def _declared(scope: Scope) -> int:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0


def _replay(body: list[bytes], first: Message | None, receive: Receive) -> Receive:
    """A receive that hands the buffered body over once, then waits on the real one."""
    pending: list[Message] = [first] if first is not None else []
    if first is None:
        pending.append({"type": "http.request", "body": b"".join(body), "more_body": False})

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
