"""What S3 itself refuses. moto enforces none of it, so these run on SeaweedFS only."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RealStores, start_app
from tests.images import download_url, presign, put_bytes

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def real_api(real_stores: RealStores) -> Iterator[httpx.Client]:
    server = start_app(real_stores.settings())
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
    server.stop()


def test_put_with_another_content_type_is_refused(
    real_api: httpx.Client, user_id: str, png: bytes
) -> None:
    upload = presign(real_api, user_id)
    response = put_bytes(upload, b"<html>not an image</html>", **{"Content-Type": "text/html"})
    assert response.status_code == 403
    assert real_api.get(f"/images/{upload['image_id']}/download").status_code == 409


def test_tampered_signature_is_refused(real_api: httpx.Client, user_id: str, png: bytes) -> None:
    upload = presign(real_api, user_id)
    url: str = upload["upload_url"]
    last = url[-1]
    upload["upload_url"] = url[:-1] + ("0" if last != "0" else "1")
    assert put_bytes(upload, png).status_code == 403


@pytest.mark.localstack_differs  # LocalStack's free S3 serves an unsigned GET of a private object
def test_anonymous_get_of_the_object_is_refused(
    real_api: httpx.Client, user_id: str, png: bytes
) -> None:
    upload = presign(real_api, user_id)
    assert put_bytes(upload, png).status_code == 200
    bare = upload["upload_url"].split("?")[0]
    assert httpx.get(bare, timeout=30).status_code == 403


def test_expired_url_is_refused(real_stores: RealStores, user_id: str, png: bytes) -> None:
    server = start_app(real_stores.settings(presign_ttl_seconds=1))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            upload = presign(api, user_id)
            time.sleep(2.5)
            assert put_bytes(upload, png).status_code == 403
    finally:
        server.stop()


def test_download_url_works_and_expires(real_stores: RealStores, user_id: str, png: bytes) -> None:
    server = start_app(real_stores.settings(presign_ttl_seconds=4))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            upload = presign(api, user_id)
            assert put_bytes(upload, png).status_code == 200
            url = download_url(api, upload["image_id"])
            assert httpx.get(url, timeout=30).content == png
            time.sleep(5.5)
            assert httpx.get(url, timeout=30).status_code == 403
    finally:
        server.stop()
