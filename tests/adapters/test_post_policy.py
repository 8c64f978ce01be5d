"""S3 itself enforces the presigned POST policy. moto ignores policies: SeaweedFS only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RealStores, start_app
from tests.images import png_bytes, presign

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def api(real_stores: RealStores) -> Iterator[httpx.Client]:
    server = start_app(real_stores.settings(max_upload_bytes=2048, presign_ttl_seconds=4))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
    server.stop()


def _post(form: dict[str, Any], data: bytes, **overrides: str) -> httpx.Response:
    fields = form["fields"] | overrides
    return httpx.post(form["url"], data=fields, files={"file": ("f", data)}, timeout=30)


def test_within_policy_is_accepted(api: httpx.Client, user_id: str) -> None:
    form = presign(api, user_id)["upload_form"]
    assert _post(form, png_bytes()).status_code in (200, 204)


def test_oversize_post_is_refused(api: httpx.Client, user_id: str) -> None:
    upload = presign(api, user_id)
    response = _post(upload["upload_form"], png_bytes() + b"\0" * 4096)
    assert response.status_code in (400, 403), response.text
    assert api.post(f"/images/{upload['image_id']}/complete").status_code == 409


def test_other_content_type_is_refused(api: httpx.Client, user_id: str) -> None:
    form = presign(api, user_id)["upload_form"]
    assert _post(form, png_bytes(), **{"Content-Type": "text/html"}).status_code == 403


def test_other_key_is_refused(api: httpx.Client, user_id: str) -> None:
    form = presign(api, user_id)["upload_form"]
    other = "images/00000000-0000-4000-8000-000000000001"
    assert _post(form, png_bytes(), key=other).status_code == 403


def test_expired_policy_is_refused(api: httpx.Client, user_id: str) -> None:
    form = presign(api, user_id)["upload_form"]
    time.sleep(5)
    assert _post(form, png_bytes()).status_code == 403
