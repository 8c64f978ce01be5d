"""On `embedded`, S3 ObjectCreated events reach the in-process worker through SQS (moto)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import EVENTS_BACKEND
from tests.images import upload_image

# SeaweedFS sends no bucket notifications (the real set confirms otherwise): embedded only.
pytestmark = pytest.mark.parametrize("backend", [EVENTS_BACKEND], indirect=True)


@pytest.fixture
def embedded_api(api: httpx.Client) -> httpx.Client:
    return api


def _wait_for_status(api: httpx.Client, image_id: str, seconds: float = 15) -> str:
    deadline = time.monotonic() + seconds
    status = "pending"
    while time.monotonic() < deadline:
        status = api.get(f"/images/{image_id}").json()["status"]
        if status != "pending":
            break
        time.sleep(0.1)
    return status


def test_event_confirms_upload_without_a_client_call(
    embedded_api: httpx.Client, user_id: str, png: bytes
) -> None:
    upload = upload_image(embedded_api, user_id, png)
    assert _wait_for_status(embedded_api, upload["image_id"]) == "ready"
    listed = embedded_api.get("/images", params={"user_id": user_id}).json()["items"]
    assert [item["image_id"] for item in listed] == [upload["image_id"]]


def test_event_rejects_a_bad_upload(embedded_api: httpx.Client, user_id: str) -> None:
    upload = upload_image(embedded_api, user_id, b"GIF89a but not really")
    assert _wait_for_status(embedded_api, upload["image_id"]) == "rejected"
