"""Variants over real HTTP: made when an image turns ready, served by presigned URL."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from cloud_image_service.background.sweeper import Sweeper
from tests.conftest import EVENTS_BACKEND, AppServer, RealStores, start_app
from tests.images import complete, download_url, presign, put_bytes, upload_image


def _photo(width: int = 1600, height: int = 1000) -> bytes:
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _wait_for_variants(api: httpx.Client, image_id: str, seconds: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    image: dict[str, Any] = {}
    while time.monotonic() < deadline:
        image = api.get(f"/images/{image_id}").json()
        if set(image["variants"]) == {"thumb", "preview"} and image["placeholder"]:
            return image
        time.sleep(0.1)
    raise AssertionError(f"variants not made within {seconds} s: {image}")


def _bucket_keys(app: AppServer, prefix: str) -> list[str]:
    storage = app.runtime.storage
    listed = storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


@pytest.mark.parametrize("backend", [EVENTS_BACKEND], indirect=True)  # with S3 events
def test_the_upload_event_makes_variants(api: httpx.Client, user_id: str) -> None:
    upload = presign(api, user_id, content_type="image/jpeg", filename="sofa.jpg")
    assert put_bytes(upload, _photo()).status_code == 200  # no complete: the event does it
    # Not timed (the 10 s of `make run` is a speed goal, for the bench): this worker's server
    # may still be making the variants of earlier tests' 200 concurrent uploads.
    image = _wait_for_variants(api, upload["image_id"], seconds=60)
    assert image["variants"]["thumb"] == {
        "width": 256,
        "height": 160,
        "size": image["variants"]["thumb"]["size"],
        "content_type": "image/webp",
    }
    assert image["variants"]["preview"]["width"] == 1280
    response = api.get(f"/images/{upload['image_id']}/download", params={"variant": "thumb"})
    served = httpx.get(response.json()["download_url"], timeout=30)
    assert served.headers["content-type"] == "image/webp"
    assert "sofa-thumb.webp" in served.headers["content-disposition"]
    assert served.content[:4] == b"RIFF"
    assert len(served.content) == image["variants"]["thumb"]["size"]


@pytest.mark.seaweed  # no worker: the variant is not made before the download
def test_variant_errors_name_the_problem(api: httpx.Client, user_id: str, backend: str) -> None:
    upload = upload_image(api, user_id, _photo(300, 200), content_type="image/jpeg")
    unknown = api.get(f"/images/{upload['image_id']}/download", params={"variant": "huge"})
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "variant_not_found"
    assert "thumb, preview" in unknown.json()["message"]
    if backend == "real":  # no worker runs there: ready, variants not made yet
        assert complete(api, upload["image_id"]).status_code == 200
        early = api.get(f"/images/{upload['image_id']}/download", params={"variant": "thumb"})
        assert early.status_code == 409
        assert early.json()["code"] == "variant_not_ready"
        assert early.headers["Retry-After"]


@pytest.mark.seaweed  # no events, no worker: the job is run by the test
@pytest.mark.parametrize("backend", ["real"], indirect=True)
def test_the_worker_job_makes_them_after_complete(
    api: httpx.Client, service: AppServer, user_id: str
) -> None:
    upload = upload_image(api, user_id, _photo(), content_type="image/jpeg")
    ready = complete(api, upload["image_id"]).json()
    assert (ready["status"], ready["variants"], ready["placeholder"]) == ("ready", {}, None)
    worker = service.runtime.make_worker()
    deadline = time.monotonic() + 10
    while worker.run_jobs_once() == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    image = _wait_for_variants(api, upload["image_id"], seconds=1)
    url = download_url(api, upload["image_id"])
    assert httpx.get(url, timeout=30).content == _photo()  # the original is untouched
    assert image["sha256"]


def test_delete_removes_every_variant_object(
    api: httpx.Client, service: AppServer, user_id: str
) -> None:
    upload = upload_image(api, user_id, _photo(400, 300), content_type="image/jpeg")
    image_id = upload["image_id"]
    complete(api, image_id)
    service.runtime.make_worker().run_jobs_once()
    _wait_for_variants(api, image_id)
    assert len(_bucket_keys(service, f"variants/{image_id}/")) == 2
    assert api.delete(f"/images/{image_id}").status_code == 200
    assert _bucket_keys(service, f"variants/{image_id}/") == []
    assert _bucket_keys(service, f"images/{image_id}") == []


def test_a_rejected_image_has_no_variants(api: httpx.Client, user_id: str) -> None:
    upload = upload_image(api, user_id, b"<html>no</html>")
    assert complete(api, upload["image_id"]).status_code == 422
    image = api.get(f"/images/{upload['image_id']}").json()
    assert (image["variants"], image["placeholder"]) == ({}, None)


@pytest.fixture(scope="module")
def thumb_only(real_stores: RealStores) -> Iterator[AppServer]:
    server = start_app(real_stores.settings(variants="thumb:256"))
    yield server
    server.stop()


@pytest.mark.real
def test_backfill_makes_a_newly_added_variant(
    real_stores: RealStores, thumb_only: AppServer
) -> None:
    with httpx.Client(base_url=thumb_only.url, timeout=30) as api:
        image_id = upload_image(api, "backfiller", _photo(500, 400), content_type="image/jpeg")[
            "image_id"
        ]
        complete(api, image_id)
        thumb_only.runtime.make_worker().run_jobs_once()
    settings = thumb_only.runtime.settings
    names = {"CIS_BUCKET": settings.bucket, "CIS_TABLE": settings.table}
    more = {"CIS_VARIANTS": "thumb:256,small:64", **names}
    dry = real_stores.run_cli("variants", "backfill", "--user", "backfiller", "--dry-run", **more)
    assert dry.returncode == 0, dry.stderr
    assert "1 lacked variants" in dry.stdout
    done = real_stores.run_cli("variants", "backfill", "--user", "backfiller", **more)
    assert done.returncode == 0, done.stderr
    assert "made 1 variants, 0 images failed" in done.stdout
    again = real_stores.run_cli("variants", "backfill", **more)
    assert "0 lacked variants" in again.stdout  # idempotent
    record = thumb_only.runtime.catalog.get(image_id)
    assert record is not None
    assert set(record.variants) == {"thumb", "small"}
    assert max(record.variants["small"].width, record.variants["small"].height) == 64
    # The sweep keeps variant objects of a ready image.
    Sweeper(thumb_only.runtime.service, 0).sweep()
    assert len(_bucket_keys(thumb_only, f"variants/{image_id}/")) == 2
