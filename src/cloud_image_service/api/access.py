"""One access-log line per request, and the request id every line and answer carries.

Pure ASGI and outermost, so the id is set before anything else runs and the line has the
final status. An incoming `X-Request-ID` of at most 128 characters of [A-Za-z0-9._-] is
kept (a proxy's or the client's), anything else replaced; the answer carries it back.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_image_service.observability.logs import REQUEST_ID, request_id_from

log = logging.getLogger("cloud_image_service.access")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class AccessLog:
    """Sets the request id, adds `X-Request-ID`, logs the request when it is done."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(_header(scope, b"x-request-id"))
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500  # what a client sees if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._log(scope, status, started)
            REQUEST_ID.reset(token)

    @staticmethod
    def _log(scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        state = scope.get("state") or {}
        image_id = (scope.get("path_params") or {}).get("image_id")
        log.info(
            "%s %s %d",
            scope["method"],
            getattr(route, "path", "unmatched"),
            status,
            extra={
                "method": scope["method"],
                "route": getattr(route, "path", "unmatched"),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "caller": state.get("caller"),
                "image_id": image_id,
            },
        )
