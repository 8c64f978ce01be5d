"""A store that goes away gives 503 with a clear message; the service recovers by itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud_image_service.local.devstores import start_stores
from tests.conftest import AppServer, RealStores, start_app
from tests.images import download_url, presign, upload_image

pytestmark = [pytest.mark.real, pytest.mark.seaweed]


@pytest.fixture(scope="module")
def own_stores(
    tmp_path_factory: pytest.TempPathFactory, real_stores: RealStores
) -> Iterator[RealStores]:
    """Stores of this module only (persisted on disk), so stopping them hurts no other test."""
    base: Path = tmp_path_factory.mktemp("outage")
    s3, dynamodb = start_stores(base / "s3", base / "ddb")
    yield RealStores.of(s3, dynamodb, real_stores.env)
    s3.stop()
    dynamodb.stop()


@pytest.fixture(scope="module")
def app(own_stores: RealStores) -> Iterator[AppServer]:
    server = start_app(own_stores.settings())
    yield server
    server.stop()


def _until_ready(api: httpx.Client, seconds: float = 30) -> None:
    """A restarted store may take its first requests slowly (a JVM warming up)."""
    deadline = time.monotonic() + seconds
    while api.get("/ready").status_code != 200:
        assert time.monotonic() < deadline, "the service did not become ready again"
        time.sleep(0.5)


def _assert_503(response: httpx.Response, store: str) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == "backend_unavailable"
    assert store in body["message"]
    assert "Traceback" not in response.text


def test_dynamodb_down_then_back(own_stores: RealStores, app: AppServer, png: bytes) -> None:
    with httpx.Client(base_url=app.url, timeout=30) as api:
        image_id = upload_image(api, "outage-user", png)["image_id"]
        own_stores.dynamodb_local.stop()
        try:
            _assert_503(
                api.post("/images/upload", json={"user_id": "u", "content_type": "image/png"}),
                "DynamoDB",
            )
            _assert_503(api.get("/images", params={"user_id": "outage-user"}), "DynamoDB")
            _assert_503(api.get(f"/images/{image_id}/download"), "DynamoDB")
            _assert_503(api.delete(f"/images/{image_id}"), "DynamoDB")
            ready = api.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["s3"] == "ok"
            assert "DynamoDB" in ready.json()["checks"]["dynamodb"]
        finally:
            own_stores.dynamodb_local.start()
        _until_ready(api)
        assert api.get(f"/images/{image_id}/download").status_code == 200
        presign(api, "outage-user")


def test_s3_down_then_back(own_stores: RealStores, app: AppServer, png: bytes) -> None:
    with httpx.Client(base_url=app.url, timeout=30) as api:
        image_id = upload_image(api, "outage-user-2", png)["image_id"]
        other_id = upload_image(api, "outage-user-2", png)["image_id"]
        own_stores.seaweed.stop()
        try:
            _assert_503(api.get(f"/images/{image_id}/download"), "S3")  # pending: verifies
            assert api.get(f"/images/{image_id}").status_code == 200  # metadata still served
            _assert_503(api.delete(f"/images/{other_id}"), "S3")
            assert api.get(f"/images/{other_id}").status_code == 404  # hidden at once
            assert api.get("/ready").status_code == 503
        finally:
            own_stores.seaweed.restart()
        _until_ready(api)
        url = download_url(api, image_id)
        assert httpx.get(url, timeout=30).content == png
        assert api.delete(f"/images/{image_id}").status_code == 200
        assert api.delete(f"/images/{other_id}").status_code == 200  # a retry finishes it
