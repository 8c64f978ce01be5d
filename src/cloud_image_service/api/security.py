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

# The docs pages (docs.py): their scripts, styles and favicon come from this origin only;
# the inline script that starts Swagger UI is allowed by its hash, computed from the page
# itself, never by 'unsafe-inline'.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
_DOCS_SOURCES = {
    "script-src": "'self'",
    # Swagger UI and ReDoc set inline styles at run time; styles cannot run code.
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "worker-src": "blob:",  # ReDoc's search index runs in a worker built from a blob
}

# API answers carry presigned URLs and per-user data: no cache, shared or private, may keep
# them. Static assets (docs, gallery) are the same for everyone and may be cached, but
# revalidated (ETag, 304) so that an upgrade never leaves a browser on old modules.
NO_STORE = "no-store"
REVALIDATE = "no-cache"
STATIC_PREFIX = "/static/"

COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def docs_csp(html: bytes) -> str:
    """The CSP of a docs page: this origin, and the page's own inline scripts by hash."""
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

        cacheable = scope["path"].startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add_headers(message, STRICT_CSP)
                _set_default(message, "Cache-Control", REVALIDATE if cacheable else NO_STORE)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _set_default(start: Message, name: str, value: str) -> None:
    headers = MutableHeaders(scope=start)
    if name not in headers:
        headers[name] = value


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


# Any port of the machine itself: what a developer's front end runs on (vite, a static
# server). Allowed on `embedded` only, when no origin is configured.
LOOPBACK_ORIGINS = r"^http://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$"


def install_cors(app: FastAPI, origins: list[str], allow_loopback: bool = False) -> None:
    """Let the listed origins (and loopback ones) call the API from a browser; else none."""
    if not origins and not allow_loopback:
        return  # no CORS headers at all: browsers refuse cross-origin reads
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_origin_regex=LOOPBACK_ORIGINS if allow_loopback else None,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "X-API-Key", "Content-Type", "Accept"],
        expose_headers=["Retry-After", "X-Request-ID"],
        # Credentials travel in headers the page sets, not in cookies.
        allow_credentials=False,
        max_age=600,
    )


def describe_cors(origins: list[str], allow_loopback: bool) -> str:
    """One line for the start-up log: what browsers may call the API."""
    if not origins and not allow_loopback:
        return (
            "CORS is off: web pages on other origins cannot call the API. To allow some, "
            "set CIS_CORS_ORIGINS=https://app.example.com,http://localhost:5173"
        )
    allowed = list(origins) + (
        ["http://localhost:*", "http://127.0.0.1:*"] if allow_loopback else []
    )
    return f"CORS allows: {', '.join(allowed)}"


def install(app: FastAPI, cors_origins: list[str], allow_loopback: bool = False) -> None:
    """CORS inside, security headers outside, so preflight answers carry them too."""
    install_cors(app, cors_origins, allow_loopback)
    install_security_headers(app)
