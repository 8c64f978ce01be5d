"""One access-log line and the HTTP metrics per request, and the request id of each answer.

Pure ASGI and outermost, so the id is set before anything else runs and the line has the
final status. One middleware does all three: each ASGI layer costs CPU on every request. An
incoming `X-Request-ID` of at most 128 characters of [A-Za-z0-9._-] is kept (a proxy's or
the client's), anything else replaced; the answer carries it back.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_image_service.observability.logs import REQUEST_ID, request_id_from
from cloud_image_service.observability.metrics import HTTP_REQUESTS, HTTP_SECONDS

UNCOUNTED = frozenset({"/metrics"})  # a scrape does not count itself

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
        seconds = time.perf_counter() - started
        method = scope["method"]
        path = getattr(scope.get("route"), "path", None)
        if path is not None and path not in UNCOUNTED:  # unmatched paths: unbounded labels
            HTTP_REQUESTS.labels(path, method, f"{status // 100}xx").inc()
            HTTP_SECONDS.labels(path, method).observe(seconds)
        if not log.isEnabledFor(logging.INFO):
            return
        state = scope.get("state") or {}
        image_id = (scope.get("path_params") or {}).get("image_id")
        log.info(
            "%s %s %d",
            method,
            path or "unmatched",
            status,
            extra={
                "method": method,
                "route": path or "unmatched",
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "caller": state.get("caller"),
                "image_id": image_id,
            },
        )
