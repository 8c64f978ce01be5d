"""Upload integrity and lifecycle over real HTTP, on every backend set."""

from __future__ import annotations

import resource
import struct
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from cloud_image_service.background.sweeper import Sweeper
from cloud_image_service.config import Settings
from tests.conftest import AppServer, RealStores, start_app
from tests.images import complete, png_bytes, presign, put_bytes, upload_image


def _complete(api: httpx.Client, image_id: str) -> httpx.Response:
    return complete(api, image_id)


def _assert_rejected(
    api: httpx.Client, service: AppServer, upload: dict[str, Any], why: str
) -> None:
    response = _complete(api, upload["image_id"])
    assert response.status_code == 422, response.text
    assert why in response.json()["message"]
    image = api.get(f"/images/{upload['image_id']}").json()
    assert image["status"] == "rejected"
    assert why in image["reason"]
    assert service.runtime.storage.head(f"images/{upload['image_id']}") is None
    download = api.get(f"/images/{upload['image_id']}/download")
    assert download.status_code == 422
    assert why in download.json()["message"]


def _bomb() -> bytes:
    """A tiny PNG that claims 100,000 x 100,000 pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 100_000))
        + chunk(b"IEND", b"")
    )


def test_html_declared_as_png_is_rejected(
    api: httpx.Client, service: AppServer, user_id: str
) -> None:
    upload = upload_image(api, user_id, b"<html><script>alert(1)</script></html>")
    _assert_rejected(api, service, upload, "does not match image/png")


def test_truncated_png_is_rejected(api: httpx.Client, service: AppServer, user_id: str) -> None:
    data = png_bytes(64, 64)
    upload = upload_image(api, user_id, data[: len(data) - 30])
    _assert_rejected(api, service, upload, "truncated")


def test_decompression_bomb_is_rejected_fast_and_small(
    api: httpx.Client, service: AppServer, user_id: str
) -> None:
    upload = upload_image(api, user_id, _bomb())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    _assert_rejected(api, service, upload, "pixel")
    assert time.monotonic() - started < 3
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 100 * 1024  # decoding 10^10 pixels would need tens of GB


def test_declared_size_above_the_limit_is_413(api: httpx.Client, user_id: str) -> None:
    body = {"user_id": user_id, "content_type": "image/png", "size": 25 * 1024 * 1024 + 1}
    response = api.post("/images/upload", json=body)
    assert response.status_code == 413
    assert "limit" in response.json()["message"]
    assert api.get("/images", params={"user_id": user_id, "status": "all"}).json()["items"] == []


def test_upload_form_pins_key_type_and_size(api: httpx.Client, user_id: str, png: bytes) -> None:
    upload = presign(api, user_id)
    form = upload["upload_form"]
    assert form["fields"]["key"] == f"uploads/{upload['image_id']}"
    assert form["fields"]["Content-Type"] == "image/png"
    assert upload["max_bytes"] == 25 * 1024 * 1024
    response = httpx.post(form["url"], data=form["fields"], files={"file": ("x.png", png)})
    assert response.status_code in (200, 201, 204), response.text
    assert _complete(api, upload["image_id"]).json()["status"] == "ready"


def test_complete_twice_gives_the_same_result(api: httpx.Client, user_id: str, png: bytes) -> None:
    upload = upload_image(api, user_id, png)
    first = _complete(api, upload["image_id"])
    second = _complete(api, upload["image_id"])
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()


def test_complete_before_upload_is_409(api: httpx.Client, user_id: str) -> None:
    upload = presign(api, user_id)
    assert _complete(api, upload["image_id"]).status_code == 409
    assert api.get(f"/images/{upload['image_id']}").json()["status"] == "pending"


def test_list_shows_ready_by_default(api: httpx.Client, user_id: str, png: bytes) -> None:
    ready = upload_image(api, user_id, png)["image_id"]
    _complete(api, ready)
    pending = presign(api, user_id)["image_id"]
    rejected = upload_image(api, user_id, b"not an image")["image_id"]
    _complete(api, rejected)

    def ids(status: str | None) -> list[str]:
        params = {"user_id": user_id} | ({"status": status} if status else {})
        return [item["image_id"] for item in api.get("/images", params=params).json()["items"]]

    assert ids(None) == [ready]
    assert ids("pending") == [pending]
    assert ids("rejected") == [rejected]
    assert ids("all") == [rejected, pending, ready]
    assert api.get("/images", params={"status": "nope"}).status_code == 422


def test_200_concurrent_uploads_all_end_ready(api: httpx.Client, service: AppServer) -> None:
    user = f"crowd-{time.monotonic_ns()}"
    data = png_bytes(4, 4)

    def flow(_: int) -> str:
        with httpx.Client(base_url=service.url, timeout=60) as client:
            upload = upload_image(client, user, data)
            response = _complete(client, upload["image_id"])
            assert response.status_code == 200, response.text
            return str(upload["image_id"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(flow, range(200)))
    assert len(set(ids)) == 200
    listed: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, str | int] = {"user_id": user, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        body = api.get("/images", params=params).json()
        listed += [item["image_id"] for item in body["items"]]
        assert all(item["status"] == "ready" for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(listed) == sorted(ids)


def _start(backend: str, request: pytest.FixtureRequest, **values: Any) -> AppServer:
    if backend == "embedded":
        return start_app(Settings(backend="embedded", cursor_secret="s", **values))
    stores: RealStores = request.getfixturevalue("real_stores")
    return start_app(stores.settings(**values))


@pytest.fixture(scope="module")
def small_limit(backend: str, request: pytest.FixtureRequest) -> Iterator[AppServer]:
    """A service with a 1 KiB upload limit, on this backend."""
    server = _start(backend, request, max_upload_bytes=1024)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def short_lived(backend: str, request: pytest.FixtureRequest) -> Iterator[AppServer]:
    """A service whose URLs last 1 s and whose pending records expire right after."""
    server = _start(backend, request, presign_ttl_seconds=1, pending_ttl_seconds=0)
    yield server
    server.stop()


def test_oversize_put_is_rejected_by_the_service(small_limit: AppServer, user_id: str) -> None:
    with httpx.Client(base_url=small_limit.url, timeout=30) as api:
        upload = presign(api, user_id)
        big = png_bytes(64, 64) + b"\0" * 4096  # a PUT is not size-limited by S3
        assert put_bytes(upload, big).status_code == 200
        _assert_rejected(api, small_limit, upload, "above the limit")


def test_expired_pending_upload_is_swept(short_lived: AppServer, user_id: str) -> None:
    runtime = short_lived.runtime
    with httpx.Client(base_url=short_lived.url, timeout=30) as api:
        abandoned = presign(api, user_id)["image_id"]
        stray_key = "images/00000000-0000-4000-8000-00000000abcd"
        runtime.storage.client.put_object(Bucket=runtime.storage.bucket, Key=stray_key, Body=b"x")
        time.sleep(2.2)  # URL expiry (1 s) + pending grace (0 s), at one-second TTL resolution
        Sweeper(runtime.service, object_grace_seconds=0).sweep()
        response = api.get(f"/images/{abandoned}")
        if response.status_code == 200:  # the sweep got there first
            assert response.json()["status"] == "rejected"
            assert "expired" in response.json()["reason"]
        else:  # DynamoDB's TTL deleted the record first (DynamoDB Local does it at once)
            assert response.status_code == 404
        assert (
            api.get("/images", params={"user_id": user_id, "status": "pending"}).json()["items"]
            == []
        )
        assert runtime.storage.head(stray_key) is None
