"""The web gallery, served by the service at `/`: static HTML, CSS and JS, no build step.

It talks to the public API only (and to S3 through presigned URLs), so its Content
Security Policy allows this origin and the S3 endpoint the URLs point at, nothing else.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
ASSETS_URL = "/static/gallery"


def s3_origin(presigned_url: str) -> str:
    """scheme://host[:port] of the S3 endpoint presigned URLs point at."""
    parts = urlsplit(presigned_url)
    return f"{parts.scheme}://{parts.netloc}"


def gallery_csp(s3: str) -> str:
    """The page's own scripts and styles; thumbnails and uploads from/to S3 only."""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data: blob: {s3}",
            f"connect-src 'self' {s3}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def install(app: FastAPI) -> None:
    """Serve the page at `/` and its assets under /static/gallery."""
    app.mount(ASSETS_URL, StaticFiles(directory=STATIC), name="gallery-assets")

    @app.get("/", include_in_schema=False)
    async def gallery(request: Request) -> HTMLResponse:
        csp: str = request.app.state.gallery_csp
        html = (STATIC / "index.html").read_text()
        return HTMLResponse(html, headers={"Content-Security-Policy": csp})
