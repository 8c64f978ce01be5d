"""/docs and /redoc render from the service alone: every asset they load is local."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx

from tests.api.test_security import directive, script_hashes
from tests.conftest import AppServer


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_swagger_ui_loads_nothing_from_elsewhere(service: AppServer) -> None:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assets = _assets(page.text)
        assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
        assert any(a.endswith("swagger-ui.css") for a in assets)
        for asset in assets:
            assert asset.startswith("/"), f"{asset} is not served by the service"
            response = client.get(urljoin(service.url, asset))
            assert response.status_code == 200, asset
            assert len(response.content) > 100
        bundle = client.get("/static/docs/swagger-ui-bundle.js")
        assert "SwaggerUIBundle" in bundle.text
        assert bundle.headers["content-type"].startswith(
            ("text/javascript", "application/javascript")
        )
        assert client.get("/openapi.json").status_code == 200


def test_docs_csp_allows_this_origin_only(service: AppServer) -> None:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            response = client.get(path)
            csp = response.headers["Content-Security-Policy"]
            assert "http" not in csp, csp  # no CDN, no font host: 'self' and the page's hashes
            scripts = directive(csp, "script-src")
            assert "'self'" in scripts
            assert "'unsafe-inline'" not in scripts
            assert "'unsafe-eval'" not in scripts
            assert script_hashes(response.text) <= set(scripts)
            assert directive(csp, "default-src") == ["'none'"]
            assert directive(csp, "frame-ancestors") == ["'none'"]
            assert directive(csp, "connect-src") == ["'self'"]
        redoc = client.get("/redoc")
        assert any(a.endswith("redoc.standalone.js") for a in _assets(redoc.text))
        assert "fonts.googleapis" not in redoc.text
        assert directive(redoc.headers["Content-Security-Policy"], "worker-src") == ["blob:"]
