"""Large and resumable uploads through Uppy's Companion protocol, parts sent straight to S3.

On SeaweedFS (real multipart, real presigned part URLs) unless marked; on moto the S3
event of the assembled object confirms it with no `complete` at all.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from cloud_image_service.background.sweeper import Sweeper
from tests.conftest import EVENTS_BACKEND, AppServer, RealStores, start_app
from tests.images import download_url

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def big_png() -> bytes:
    """About 27 MiB of PNG: random noise does not compress (above the 25 MiB single limit)."""
    side = 3000
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def _start(api: httpx.Client, user: str, size: int | None = None, **meta: str) -> dict[str, Any]:
    metadata = {"user_id": user, **meta} | ({"size": str(size)} if size else {})
    body = {"filename": "panorama.png", "type": "image/png", "metadata": metadata}
    response = api.post("/s3/multipart", json=body)
    assert response.status_code == 200, response.text
    started: dict[str, Any] = response.json()
    assert started["key"] == f"uploads/{started['image_id']}"
    return started


def _send(
    api: httpx.Client, started: dict[str, Any], data: bytes, numbers: list[int], part: int = 8 * MIB
) -> dict[int, str]:
    """PUT the chosen parts to their presigned URLs; their ETags by number."""
    upload, key = started["uploadId"], started["key"]
    etags = {}
    for number in numbers:
        signed = api.get(f"/s3/multipart/{upload}/{number}", params={"key": key})
        assert signed.status_code == 200, signed.text
        chunk = data[(number - 1) * part : number * part]
        put = httpx.put(signed.json()["url"], content=chunk, timeout=120)
        assert put.status_code == 200, put.text
        etags[number] = put.headers["etag"]
    return etags


def _complete(api: httpx.Client, started: dict[str, Any], etags: dict[int, str]) -> httpx.Response:
    parts = [{"PartNumber": n, "ETag": e} for n, e in sorted(etags.items())]
    return api.post(
        f"/s3/multipart/{started['uploadId']}/complete",
        params={"key": started["key"]},
        json={"parts": parts},
        timeout=120,
    )


def _parts_count(data: bytes, part: int = 8 * MIB) -> int:
    return (len(data) + part - 1) // part


@pytest.mark.parametrize("backend", ["real"], indirect=True)
def test_a_large_png_in_parts_is_verified_and_downloaded_identical(
    api: httpx.Client, user_id: str, big_png: bytes
) -> None:
    assert len(big_png) > 25 * MIB
    started = _start(api, user_id, size=len(big_png))
    assert started["part_size"] == 8 * MIB
    etags = _send(api, started, big_png, list(range(1, _parts_count(big_png) + 1)))
    done = _complete(api, started, etags)
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["status"], body["image_id"], body["key"]) == (
        "ready",
        started["image_id"],
        started["key"],
    )
    assert body["location"].endswith(f"/images/{started['image_id']}")
    image = api.get(f"/images/{started['image_id']}").json()
    assert image["sha256"] == hashlib.sha256(big_png).hexdigest()
    assert httpx.get(download_url(api, started["image_id"]), timeout=120).content == big_png
    again = _complete(api, started, etags)  # a retry after a lost answer: the same verdict
    assert (again.status_code, again.json()["status"]) == (200, "ready")


def _assembled_by_s3(
    api: httpx.Client, service: AppServer, user_id: str, size: tuple[int, int]
) -> tuple[dict[str, Any], dict[int, str]]:
    """A one-part upload that S3 assembled (straight with boto3, as if the service's complete
    call was lost after S3 did its part): the started upload and its ETags."""
    buffer = io.BytesIO()
    Image.new("RGB", size, "teal").save(buffer, "PNG")
    started = _start(api, user_id)
    etags = _send(api, started, buffer.getvalue(), [1])
    storage = service.runtime.storage
    storage.client.complete_multipart_upload(
        Bucket=storage.bucket,
        Key=started["key"],
        UploadId=started["uploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etags[1]}]},
    )
    return started, etags


@pytest.mark.parametrize("backend", ["real"], indirect=True)
def test_complete_after_s3_assembled_the_parts_gives_the_verdict(
    api: httpx.Client, service: AppServer, user_id: str
) -> None:
    # The answer was lost (or the service said 409): a retry must not be a 404 because S3
    # no longer knows the upload id.
    started, etags = _assembled_by_s3(api, service, user_id, (64, 48))
    done = _complete(api, started, etags)
    assert (done.status_code, done.json()["status"]) == (200, "ready"), done.text


@pytest.mark.parametrize("backend", ["real"], indirect=True)
def test_resume_sends_only_the_missing_parts(
    api: httpx.Client, user_id: str, big_png: bytes
) -> None:
    data = big_png[: 4 * 6 * MIB]  # cut into 4 parts of 6 MiB: not a valid PNG any more
    started = _start(api, user_id)
    first = _send(api, started, data, [1, 2], part=6 * MIB)
    # The client crashed; it asks S3 which parts arrived.
    listed = api.get(f"/s3/multipart/{started['uploadId']}", params={"key": started["key"]})
    assert listed.status_code == 200
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed.json()] == [
        (1, first[1], 6 * MIB),
        (2, first[2], 6 * MIB),
    ]
    rest = _send(api, started, data, [3, 4], part=6 * MIB)
    done = _complete(api, started, first | rest)
    assert done.status_code == 422  # assembled, then verified: a cut PNG is rejected
    assert "truncated" in done.json()["message"] or "decode" in done.json()["message"]


@pytest.mark.parametrize("backend", ["real"], indirect=True)
def test_abort_leaves_nothing(api: httpx.Client, service: AppServer, user_id: str) -> None:
    started = _start(api, user_id)
    _send(api, started, os.urandom(6 * MIB), [1], part=6 * MIB)
    gone = api.delete(f"/s3/multipart/{started['uploadId']}", params={"key": started["key"]})
    assert (gone.status_code, gone.json()) == (200, {})
    image = api.get(f"/images/{started['image_id']}").json()
    assert (image["status"], image["reason"]) == ("rejected", "aborted")
    storage = service.runtime.storage
    listed = storage.client.list_multipart_uploads(Bucket=storage.bucket, Prefix=started["key"])
    assert listed.get("Uploads", []) == []
    assert storage.head(started["key"]) is None
    again = api.get(f"/s3/multipart/{started['uploadId']}", params={"key": started["key"]})
    assert again.status_code == 404


@pytest.mark.parametrize("backend", ["real"], indirect=True)
def test_a_small_part_before_the_last_is_refused_with_the_rule(
    api: httpx.Client, user_id: str
) -> None:
    started = _start(api, user_id)
    etags = _send(api, started, os.urandom(MIB) + os.urandom(MIB), [1, 2], part=MIB)
    refused = _complete(api, started, etags)
    assert refused.status_code == 400
    assert "at least 5242880 bytes" in refused.json()["message"]
    assert "part 1" in refused.json()["message"]


@pytest.fixture(scope="module")
def small_limit(real_stores: RealStores) -> Iterator[AppServer]:
    server = start_app(real_stores.settings(max_multipart_bytes=10 * MIB))
    yield server
    server.stop()


@pytest.mark.real
def test_more_than_the_limit_is_413_and_nothing_is_left(small_limit: AppServer) -> None:
    with httpx.Client(base_url=small_limit.url, timeout=60) as api:
        assert _start_status(api, 11 * MIB) == 413  # declared: refused before S3
        started = _start(api, "big-user")
        etags = _send(api, started, os.urandom(12 * MIB), [1, 2], part=6 * MIB)
        refused = _complete(api, started, etags)
        assert refused.status_code == 413, refused.text
        assert "aborted" in refused.json()["message"]
        storage = small_limit.runtime.storage
        uploads = storage.client.list_multipart_uploads(Bucket=storage.bucket)
        assert [u for u in uploads.get("Uploads", []) if u["Key"] == started["key"]] == []
        assert api.get(f"/images/{started['image_id']}").json()["status"] == "rejected"


def _start_status(api: httpx.Client, size: int) -> int:
    body = {"type": "image/png", "metadata": {"user_id": "big-user", "size": str(size)}}
    return api.post("/s3/multipart", json=body).status_code


def test_a_key_that_does_not_match_the_upload_is_404(api: httpx.Client, user_id: str) -> None:
    started = _start(api, user_id)
    other = _start(api, user_id)
    for key in (other["key"], "uploads/not-an-id", f"images/{started['image_id']}"):
        response = api.get(f"/s3/multipart/{started['uploadId']}/1", params={"key": key})
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "upload_not_found"


def test_batch_signing_and_params(api: httpx.Client, user_id: str) -> None:
    started = _start(api, user_id, tags="trip,alps")
    batch = api.get(
        f"/s3/multipart/{started['uploadId']}/batch",
        params={"key": started["key"], "partNumbers": "1,2,3"},
    )
    assert batch.status_code == 200
    assert set(batch.json()["presignedUrls"]) == {"1", "2", "3"}
    assert api.get(f"/images/{started['image_id']}").json()["tags"] == ["trip", "alps"]
    params = api.get(
        "/s3/params",
        params={"filename": "cat.png", "type": "image/png", "metadata[user_id]": user_id},
    )
    assert params.status_code == 200, params.text
    form = params.json()
    assert (form["method"], form["headers"]) == ("POST", {})
    assert form["fields"]["Content-Type"] == "image/png"
    assert form["fields"]["key"].startswith("uploads/")


@pytest.mark.parametrize("backend", [EVENTS_BACKEND], indirect=True)
def test_the_s3_event_of_the_assembled_object_makes_it_ready(
    api: httpx.Client, service: AppServer, user_id: str
) -> None:
    started, _ = _assembled_by_s3(api, service, user_id, (640, 480))  # its event does the rest
    deadline = time.monotonic() + 15
    status = "pending"
    while status == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
        status = api.get(f"/images/{started['image_id']}").json()["status"]
    assert status == "ready"


@pytest.mark.parametrize("backend", ["real"], indirect=True)
def test_the_sweep_aborts_abandoned_uploads(
    api: httpx.Client, service: AppServer, user_id: str
) -> None:
    started = _start(api, user_id)
    _send(api, started, os.urandom(6 * MIB), [1], part=6 * MIB)
    runtime = service.runtime
    sweeper = Sweeper(runtime.service, 0, multipart=runtime.multipart, upload_lifetime_seconds=0)
    assert sweeper.sweep().multipart_aborted >= 1
    storage = runtime.storage
    listed = storage.client.list_multipart_uploads(Bucket=storage.bucket, Prefix=started["key"])
    assert listed.get("Uploads", []) == []
    image = api.get(f"/images/{started['image_id']}").json()
    assert image["status"] == "rejected"
    assert "never assembled" in image["reason"]
