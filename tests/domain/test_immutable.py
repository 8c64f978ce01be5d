"""Verified means verified: what downloads serve is what was checked, on every backend.

Findings of the safety review, each a test: a PUT replayed after `complete` (or racing
it), data appended to an image, uploader headers replayed on download, a verifier
killed mid-way.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import httpx

from tests.conftest import AppServer
from tests.images import download_url, png_bytes, presign, put_bytes, upload_image

ZIP = b"PK\x03\x04\x14\x00\x00\x00" + b"zip data " * 200


def _served(api: httpx.Client, image_id: str) -> httpx.Response:
    url = download_url(api, image_id)
    return httpx.get(url, timeout=30)


def _record_matches_served(api: httpx.Client, image_id: str) -> bytes:
    record = api.get(f"/images/{image_id}").json()
    served = _served(api, image_id).content
    assert record["sha256"] == hashlib.sha256(served).hexdigest()
    assert record["size"] == len(served)
    return served


def test_a_put_replayed_after_complete_changes_nothing_served(
    api: httpx.Client, user_id: str
) -> None:
    original = png_bytes(5, 5)
    upload = upload_image(api, user_id, original)
    assert api.post(f"/images/{upload['image_id']}/complete").json()["status"] == "ready"
    # The presigned PUT is still valid: replay it with other bytes and a huge body.
    assert put_bytes(upload, b"<html><script>alert(1)</script></html>" * 1000).status_code == 200
    time.sleep(0.3)  # on embedded, the upload event reaches the worker meanwhile
    assert _record_matches_served(api, upload["image_id"]) == original


def test_a_put_racing_complete_never_desynchronises_the_record(
    api: httpx.Client, user_id: str
) -> None:
    uploads = [upload_image(api, user_id, png_bytes(4, 4)) for _ in range(10)]

    def race(upload: dict[str, Any]) -> None:
        other = png_bytes(6, 3)
        threads = [
            threading.Thread(target=lambda: put_bytes(upload, other)),
            threading.Thread(target=lambda: api.post(f"/images/{upload['image_id']}/complete")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    for upload in uploads:
        race(upload)
    for upload in uploads:
        response = api.post(f"/images/{upload['image_id']}/complete")
        if response.status_code == 409:  # the racing PUT was still being taken
            time.sleep(1)
            response = api.post(f"/images/{upload['image_id']}/complete")
        assert response.json()["status"] == "ready", response.text
        _record_matches_served(api, upload["image_id"])


def test_data_appended_to_an_image_is_not_stored(api: httpx.Client, user_id: str) -> None:
    image = png_bytes(3, 3)
    upload = upload_image(api, user_id, image + ZIP)
    ready = api.post(f"/images/{upload['image_id']}/complete").json()
    assert ready["status"] == "ready"
    assert ready["trailing_bytes_removed"] == len(ZIP)
    assert _record_matches_served(api, upload["image_id"]) == image


def test_uploader_headers_are_not_replayed_on_download(api: httpx.Client, user_id: str) -> None:
    upload = presign(api, user_id)
    extra = {"Content-Encoding": "gzip", "Cache-Control": "public, max-age=31536000"}
    assert put_bytes(upload, png_bytes(), **extra).status_code == 200
    assert api.post(f"/images/{upload['image_id']}/complete").status_code == 200
    served = _served(api, upload["image_id"])
    assert served.headers.get("content-encoding") is None
    assert "max-age=31536000" not in served.headers.get("cache-control", "")
    assert served.content == png_bytes()  # decodable as sent: nothing claims it is gzip


def test_a_live_claim_is_a_409_and_a_stale_one_is_taken_over(
    api: httpx.Client, service: AppServer, user_id: str
) -> None:
    upload = presign(api, user_id)
    image_id = upload["image_id"]
    catalog = service.runtime.catalog
    now = int(time.time())
    # A verifier took the claim and was killed: its lease is still running.
    assert catalog.claim(image_id, "killed-verifier", now, 60) is not None
    assert put_bytes(upload, png_bytes()).status_code == 200
    started = time.monotonic()
    response = api.post(f"/images/{image_id}/complete")
    assert response.status_code == 409, response.text  # never 200 with status "pending"
    assert response.json()["code"] == "verification_in_progress"
    assert 1 <= int(response.headers["Retry-After"]) <= 5
    assert time.monotonic() - started < 8  # a bounded wait (5 s), then the 409
    download = api.get(f"/images/{image_id}/download")
    assert download.json()["code"] == "verification_in_progress"  # not "upload it first"
    # Once its lease is over, the next call takes it over at once.
    assert catalog.claim(image_id, "killed-verifier", now - 120, 60) is not None
    assert api.post(f"/images/{image_id}/complete").json()["status"] == "ready"
