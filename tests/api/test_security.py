"""The HTTP pieces of authentication on a small app under uvicorn: dependency, OpenAPI,
security headers, CORS. The real app is wired elsewhere; this one holds only these pieces.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse

from cloud_image_service.api import errors, security
from cloud_image_service.api.deps import caller_dependency, rate_limited_caller
from cloud_image_service.auth.authenticator import Authenticator
from cloud_image_service.auth.caller import Caller
from cloud_image_service.auth.errors import Unauthorized
from cloud_image_service.auth.jwt_verifier import JwtVerifier
from cloud_image_service.auth.ratelimit import InMemoryRateLimiter, RateLimit
from cloud_image_service.domain.errors import BackendUnavailable
from cloud_image_service.local.devstores import free_port
from tests.conftest import AppServer

SECRET = "k" * 40


def make_app(origins: list[str] | None = None, limit: RateLimit | None = None) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    security.install(app, origins or [])
    app.state.authenticator = Authenticator("jwt", jwt_verifier=JwtVerifier(secret=SECRET))
    app.state.rate_limiter = InMemoryRateLimiter(limit) if limit else None

    @app.get("/whoami")
    def whoami(caller: Annotated[Caller, Depends(caller_dependency)]) -> dict[str, object]:
        return {"user_id": caller.user_id, "admin": caller.admin}

    @app.post("/upload")
    def upload(caller: Annotated[Caller, Depends(rate_limited_caller)]) -> dict[str, object]:
        return {"user_id": caller.user_id}

    @app.get("/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(iter([b"a", b"b", b"c"]), media_type="text/plain")

    return app


def bearer(sub: str = "alice", **extra: object) -> dict[str, str]:
    claims = {"sub": sub, "exp": int(time.time()) + 600, **extra}
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


@contextmanager
def serve(app: FastAPI) -> Iterator[httpx.Client]:
    """The app under uvicorn on a loopback port, and a client for it."""
    server = AppServer(app).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            yield client
    finally:
        server.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with serve(make_app(limit=RateLimit(2, 60))) as client:
        yield client


def test_openapi_declares_both_schemes(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["BearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "JWT access token (CIS_AUTH_MODE=jwt).",
    }
    assert schemes["ApiKey"]["type"] == "apiKey"
    assert schemes["ApiKey"]["in"] == "header"
    assert schemes["ApiKey"]["name"] == "X-API-Key"
    # Two entries: either scheme satisfies the route.
    assert document["paths"]["/whoami"]["get"]["security"] == [{"BearerToken": []}, {"ApiKey": []}]


def test_valid_token_names_the_caller(client: httpx.Client) -> None:
    response = client.get("/whoami", headers=bearer(scope="admin"))
    assert response.status_code == 200
    assert response.json() == {"user_id": "alice", "admin": True}


def test_missing_and_expired_tokens_are_401_with_a_challenge(client: httpx.Client) -> None:
    response = client.get("/whoami")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="cloud-image-service"'
    assert response.json()["code"] == "unauthorized"
    response = client.get("/whoami", headers=bearer(exp=int(time.time()) - 600))
    assert response.status_code == 401
    assert response.json()["message"] == "token expired"
    assert 'error_description="token expired"' in response.headers["WWW-Authenticate"]


def test_rate_limited_route_answers_429_with_retry_after(client: httpx.Client) -> None:
    assert client.post("/upload", headers=bearer()).status_code == 200
    assert client.post("/upload", headers=bearer()).status_code == 200
    response = client.post("/upload", headers=bearer())
    assert response.status_code == 429
    assert response.json()["code"] == "too_many_requests"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert client.post("/upload", headers=bearer("bob")).status_code == 200
    assert client.post("/upload").status_code == 401  # authentication comes first


def test_json_responses_carry_the_strict_headers(client: httpx.Client) -> None:
    for response in (client.get("/whoami", headers=bearer()), client.get("/whoami")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Content-Security-Policy"].startswith(
            "default-src 'none'; frame-ancestors 'none'"
        )


def test_streamed_bodies_pass_untouched(client: httpx.Client) -> None:
    response = client.get("/stream")
    assert response.text == "abc"
    assert response.headers["X-Frame-Options"] == "DENY"


def script_hashes(html: str) -> set[str]:
    return {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    }


def directive(csp: str, name: str) -> list[str]:
    for part in csp.split(";"):
        words = part.split()
        if words and words[0] == name:
            return words[1:]
    return []


def test_no_cors_without_origins(client: httpx.Client) -> None:
    response = client.get("/whoami", headers={"Origin": "https://app.example", **bearer()})
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/whoami",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_for_listed_origins_only() -> None:
    with serve(make_app(origins=["https://app.example"])) as client:
        check_cors(client)


def check_cors(client: httpx.Client) -> None:
    preflight = client.options(
        "/whoami",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, x-api-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "x-api-key" in allowed
    assert preflight.headers["X-Content-Type-Options"] == "nosniff"  # headers outermost
    response = client.get("/whoami", headers={"Origin": "https://app.example", **bearer()})
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    other = client.get("/whoami", headers={"Origin": "https://evil.example", **bearer()})
    assert "access-control-allow-origin" not in other.headers


# --- JWKS fetched over HTTP (the Cognito case; loopback http is allowed for tests) --------


@contextmanager
def jwks_server(body: bytes) -> Iterator[str]:
    """A JWKS endpoint on a loopback port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def test_jwks_url_verifies_and_refuses_unknown_keys() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())), "kid": "k1"}
    with jwks_server(json.dumps({"keys": [jwk]}).encode()) as url:
        verifier = JwtVerifier(jwks=url)
        claims = {"sub": "carol", "exp": int(time.time()) + 60}
        token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})
        assert verifier.verify(token).user_id == "carol"
        token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k2"})
        with pytest.raises(Unauthorized, match="unknown key"):
            verifier.verify(token)
        token = jwt.encode(claims, key, algorithm="ES256")
        with pytest.raises(Unauthorized, match="no key id"):
            verifier.verify(token)


def test_unreachable_jwks_url_is_a_503_not_a_401() -> None:
    verifier = JwtVerifier(jwks=f"http://127.0.0.1:{free_port()}/jwks.json", jwks_timeout=1)
    key = ec.generate_private_key(ec.SECP256R1())
    claims = {"sub": "carol", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})
    with pytest.raises(BackendUnavailable, match="JWKS"):
        verifier.verify(token)
