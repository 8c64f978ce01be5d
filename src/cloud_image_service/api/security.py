"""Security headers on every response, and CORS only for the configured origins."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Collection

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Every response: nothing may be loaded, framed or referred to.
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

# The docs pages as FastAPI renders them (fastapi.openapi.docs.get_swagger_ui_html and
# get_redoc_html defaults): scripts and CSS from jsDelivr, the favicon from
# fastapi.tiangolo.com, ReDoc's fonts from Google, and the OpenAPI document (plus
# Swagger UI's "Try it out" calls) from this origin. Inline scripts are allowed by
# hash, computed from the page itself, never by 'unsafe-inline'.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
_DOCS_SOURCES = {
    "script-src": "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/ "
    "https://cdn.jsdelivr.net/npm/redoc@2/",
    # Swagger UI and ReDoc set inline styles at run time; styles cannot run code.
    "style-src": "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/ "
    "https://fonts.googleapis.com 'unsafe-inline'",
    "img-src": "'self' data: https://fastapi.tiangolo.com",
    "font-src": "https://fonts.gstatic.com",
    "connect-src": "'self'",
    "worker-src": "blob:",  # ReDoc's search index runs in a worker built from a blob
}

COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def docs_csp(html: bytes) -> str:
    """The CSP of a docs page: its CDN sources, and its own inline scripts by hash."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    ]
    sources = dict(_DOCS_SOURCES)
    sources["script-src"] = " ".join([sources["script-src"], *hashes])
    directives = ["default-src 'none'", *(f"{name} {value}" for name, value in sources.items())]
    directives += ["frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"]
    return "; ".join(directives)


class SecurityHeadersMiddleware:
    """Pure ASGI: adds the headers without buffering responses, except the small docs pages."""

    def __init__(self, app: ASGIApp, docs_paths: Collection[str] = DOCS_PATHS) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.docs_paths:
            await self.app(scope, receive, _DocsSender(send))
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add_headers(message, STRICT_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _add_headers(start: Message, csp: str) -> None:
    """Set the headers a route did not set itself."""
    headers = MutableHeaders(scope=start)
    for name, value in {**COMMON_HEADERS, "Content-Security-Policy": csp}.items():
        if name not in headers:
            headers[name] = value


class _DocsSender:
    """Holds back an HTML docs page until its body is complete, to hash its scripts."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.start: Message | None = None
        self.body: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            content_type = MutableHeaders(scope=message).get("content-type", "")
            if not content_type.startswith("text/html"):  # e.g. a 404 JSON body
                _add_headers(message, STRICT_CSP)
                await self.send(message)
                return
            self.start = message
            return
        if self.start is None or message["type"] != "http.response.body":
            await self.send(message)
            return
        self.body.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self.body)
        _add_headers(self.start, docs_csp(body))
        await self.send(self.start)
        await self.send({"type": "http.response.body", "body": body, "more_body": False})


def install_security_headers(app: FastAPI) -> None:
    """Add the security headers middleware."""
    app.add_middleware(SecurityHeadersMiddleware)


def install_cors(app: FastAPI, origins: list[str]) -> None:
    """Let the listed origins call the API from a browser; none when the list is empty."""
    if not origins:
        return  # no CORS headers at all: browsers refuse cross-origin reads
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        expose_headers=["Retry-After"],
        # Credentials travel in headers the page sets, not in cookies.
        allow_credentials=False,
        max_age=600,
    )


def install(app: FastAPI, cors_origins: list[str]) -> None:
    """CORS inside, security headers outside, so preflight answers carry them too."""
    install_cors(app, cors_origins)
    install_security_headers(app)
