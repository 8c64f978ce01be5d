"""Authentication and per-user isolation over real HTTP, for each mode and backend set."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from cloud_image_service.auth.tokens import mint_token
from cloud_image_service.config import Settings
from tests.conftest import AppServer, RealStores, start_app
from tests.images import download_url, png_bytes

SECRET = "a-test-secret-that-is-at-least-32-bytes-long"
AUDIENCE = "cloud-image-service-tests"


@dataclass
class AuthedService:
    """A running service in one auth mode, and credentials for alice, bob and an admin."""

    server: AppServer
    mode: str
    headers: dict[str, dict[str, str]]

    def client(self, who: str) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, headers=self.headers[who], timeout=30)


def _settings(backend: str, request: pytest.FixtureRequest, **values: Any) -> Settings:
    if backend == "embedded":
        return Settings(backend="embedded", cursor_secret="s", **values)
    stores: RealStores = request.getfixturevalue("real_stores")
    return stores.settings(allow_insecure=False, **values)


def _credentials(server: AppServer, mode: str, settings: Settings) -> dict[str, dict[str, str]]:
    users = {"alice": ("alice", False), "bob": ("bob", False), "admin": ("root", True)}
    if mode == "jwt":
        return {
            who: {"Authorization": f"Bearer {mint_token(settings, user, admin)}"}
            for who, (user, admin) in users.items()
        }
    keys = server.runtime.keys
    return {who: {"X-API-Key": keys.create(user, admin)[1]} for who, (user, admin) in users.items()}


@pytest.fixture(scope="module", params=["jwt", "api-key"])
def authed(backend: str, request: pytest.FixtureRequest) -> Iterator[AuthedService]:
    mode: str = request.param
    settings = _settings(
        backend,
        request,
        auth_mode=mode,
        jwt_secret=SECRET if mode == "jwt" else None,
        jwt_audience=AUDIENCE if mode == "jwt" else None,
        rate_limit="5/second",
    )
    server = start_app(settings)
    yield AuthedService(server, mode, _credentials(server, mode, settings))
    server.stop()


def _upload(client: httpx.Client, **body: Any) -> str:
    response = client.post("/images/upload", json={"content_type": "image/png"} | body)
    assert response.status_code == 201, response.text
    upload = response.json()
    put = httpx.put(upload["upload_url"], content=png_bytes(), headers=upload["upload_headers"])
    assert put.status_code == 200
    assert client.post(f"/images/{upload['image_id']}/complete").status_code == 200
    return str(upload["image_id"])


def _throttle_safe(action: Any) -> httpx.Response:
    """Uploads are rate limited in this fixture: wait out a 429 instead of failing."""
    for _ in range(20):
        response: httpx.Response = action()
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers["Retry-After"]))
    raise AssertionError("still rate limited")


def test_the_user_comes_from_the_credential(authed: AuthedService) -> None:
    with authed.client("alice") as alice:
        image_id = _throttle_safe(
            lambda: alice.post("/images/upload", json={"content_type": "image/png"})
        ).json()["image_id"]
        assert alice.get(f"/images/{image_id}").json()["user_id"] == "alice"
        same = alice.post("/images/upload", json={"content_type": "image/png", "user_id": "alice"})
        assert same.status_code in (201, 429)


def test_other_users_images_are_invisible(authed: AuthedService) -> None:
    with authed.client("alice") as alice, authed.client("bob") as bob:
        image_id = _upload(bob)
        for response in (
            alice.get(f"/images/{image_id}"),
            alice.get(f"/images/{image_id}/download"),
            alice.get(f"/images/{image_id}/download", params={"variant": "thumb"}),
            alice.post(f"/images/{image_id}/restore"),
            alice.post(f"/images/{image_id}/complete"),
            alice.delete(f"/images/{image_id}"),
        ):
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "image_not_found"
        assert image_id not in [i["image_id"] for i in alice.get("/images").json()["items"]]
        # Bob's multipart upload: its id and key are of no use to alice.
        started = _throttle_safe(
            lambda: bob.post("/s3/multipart", json={"type": "image/png", "metadata": {}})
        ).json()
        for response in (
            alice.get(f"/s3/multipart/{started['uploadId']}", params={"key": started["key"]}),
            alice.get(f"/s3/multipart/{started['uploadId']}/1", params={"key": started["key"]}),
            alice.delete(f"/s3/multipart/{started['uploadId']}", params={"key": started["key"]}),
        ):
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "upload_not_found"
        assert alice.get("/images", params={"user_id": "bob"}).status_code == 403
        # Bob's image is untouched.
        assert bob.get(f"/images/{image_id}").json()["status"] == "ready"
        url = download_url(bob, image_id)
        assert httpx.get(url).content == png_bytes()
        assert image_id in [i["image_id"] for i in bob.get("/images").json()["items"]]


def test_body_user_id_of_someone_else_is_403(authed: AuthedService) -> None:
    with authed.client("alice") as alice:
        body = {"content_type": "image/png", "user_id": "bob"}
        response = _throttle_safe(lambda: alice.post("/images/upload", json=body))
        assert response.status_code == 403
        assert "user_id" in response.json()["message"]


def test_admin_acts_for_anyone_and_lists_all(authed: AuthedService) -> None:
    with authed.client("admin") as admin, authed.client("alice") as alice:
        alices = _upload(alice)
        bobs = _throttle_safe(
            lambda: admin.post(
                "/images/upload", json={"content_type": "image/png", "user_id": "bob"}
            )
        )
        assert bobs.status_code == 201
        # A list without user_id is a Scan in table order: walk every page.
        everything: list[str] = []
        params: dict[str, str] = {"status": "all", "limit": "100"}
        while True:
            page = admin.get("/images", params=params).json()
            everything += [i["image_id"] for i in page["items"]]
            if not page["next_cursor"]:
                break
            params["cursor"] = page["next_cursor"]
        assert {alices, bobs.json()["image_id"]} <= set(everything)
        assert admin.get(f"/images/{alices}").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nonsense"},
        {"X-API-Key": "cis_not-a-real-key"},
        {"Authorization": "Basic YTpi"},
    ],
)
def test_missing_or_bad_credentials_are_401(authed: AuthedService, headers: dict[str, str]) -> None:
    response = httpx.get(f"{authed.server.url}/images", headers=headers)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    assert response.json()["code"] == "unauthorized"


def _forged(kind: str) -> str:
    now = int(time.time())
    claims = {"sub": "alice", "exp": now + 600, "aud": AUDIENCE}
    if kind == "wrong-key":
        return jwt.encode(claims, "another-secret-that-is-also-32-bytes-long!", algorithm="HS256")
    if kind == "alg-none":
        return jwt.encode(claims, key="", algorithm="none")
    if kind == "wrong-audience":
        return jwt.encode(claims | {"aud": "someone-else"}, SECRET, algorithm="HS256")
    return jwt.encode(claims | {"exp": now - 120}, SECRET, algorithm="HS256")


@pytest.mark.parametrize("authed", ["jwt"], indirect=True)  # tokens are for jwt mode
@pytest.mark.parametrize("kind", ["wrong-key", "alg-none", "wrong-audience", "expired"])
def test_forged_tokens_are_401(authed: AuthedService, kind: str) -> None:
    response = httpx.get(
        f"{authed.server.url}/images", headers={"Authorization": f"Bearer {_forged(kind)}"}
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if kind == "expired":
        assert "expired" in response.json()["message"]


@pytest.mark.parametrize("authed", ["api-key"], indirect=True)  # keys are for api-key mode
def test_revoked_api_key_is_401(authed: AuthedService) -> None:
    keys = authed.server.runtime.keys
    key_id, plaintext = keys.create("carol")
    with httpx.Client(base_url=authed.server.url, headers={"X-API-Key": plaintext}) as carol:
        assert carol.get("/images").status_code == 200
        for _ in range(20):  # the key-id index is eventually consistent
            if keys.revoke(key_id):
                break
            time.sleep(0.2)
        assert carol.get("/images").status_code == 401


def test_upload_rate_limit_answers_429_and_recovers(authed: AuthedService) -> None:
    with authed.client("bob") as bob:
        # At once, so that they fall in one one-second window even on a loaded machine.
        with ThreadPoolExecutor(12) as pool:
            responses = list(
                pool.map(
                    lambda _: bob.post("/images/upload", json={"content_type": "image/png"}),
                    range(12),
                )
            )
        limited = [r for r in responses if r.status_code == 429]
        assert limited, [r.status_code for r in responses]
        assert all(int(r.headers["Retry-After"]) == 1 for r in limited)
        time.sleep(1.1)
        assert bob.post("/images/upload", json={"content_type": "image/png"}).status_code == 201


def test_openapi_declares_both_schemes(authed: AuthedService) -> None:
    document = httpx.get(f"{authed.server.url}/openapi.json").json()
    assert {"BearerToken", "ApiKey"} <= set(document["components"]["securitySchemes"])


def test_security_headers(authed: AuthedService) -> None:
    response = httpx.get(f"{authed.server.url}/health")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    docs = httpx.get(f"{authed.server.url}/docs")
    assert "script-src 'self'" in docs.headers["Content-Security-Policy"]  # no CDN
    preflight = httpx.options(
        f"{authed.server.url}/images",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers  # CORS is off by default


def test_refuses_to_start_on_aws_without_auth(real_stores: RealStores) -> None:
    result = real_stores.run_cli("serve", CIS_PORT="0")
    assert result.returncode == 2
    assert "CIS_ALLOW_INSECURE" in result.stderr
    assert "Traceback" not in result.stderr
