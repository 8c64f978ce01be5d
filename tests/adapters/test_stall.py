"""A stalled store stalls only what needs it (SeaweedFS frozen with SIGSTOP).

A SIGSTOPped server still accepts connections (the kernel does) but answers nothing:
the hardest failure for a client, which only a timeout ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from cloud_image_service.background.sweeper import Sweeper
from cloud_image_service.local.devstores import start_stores
from tests.conftest import AppServer, RealStores, start_app
from tests.images import png_bytes, upload_image

pytestmark = [pytest.mark.real, pytest.mark.seaweed]

TIMEOUT, ATTEMPTS, S3_SLOTS = 1.0, 2, 4
# attempts x timeout, the jittered backoff between them (at most 1 s for the first
# retry in botocore's standard mode), and at most one gate wait (= the timeout).
WORST_CASE_503 = ATTEMPTS * TIMEOUT + 1.0 + TIMEOUT


@pytest.fixture(scope="module")
def stores(
    tmp_path_factory: pytest.TempPathFactory, real_stores: RealStores
) -> Iterator[RealStores]:
    """Stores of this module only, so freezing them hurts no other test."""
    base: Path = tmp_path_factory.mktemp("stall")
    s3, dynamodb = start_stores(base / "s3")
    yield RealStores.of(s3, dynamodb, real_stores.env)
    s3.stop()
    dynamodb.stop()


@pytest.fixture(scope="module")
def app(stores: RealStores) -> Iterator[AppServer]:
    settings = stores.settings(
        aws_timeout_seconds=TIMEOUT,
        aws_max_attempts=ATTEMPTS,
        s3_max_concurrency=S3_SLOTS,
        ready_timeout_seconds=1.0,
    )
    server = start_app(settings)
    yield server
    server.stop()


def _timed(call: httpx.Client, method: str, path: str) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    response = call.request(method, path)
    return time.monotonic() - started, response


def test_stalled_s3_leaves_health_and_dynamodb_routes_fast(
    stores: RealStores, app: AppServer
) -> None:
    with httpx.Client(base_url=app.url, timeout=60) as api:
        ready_one = upload_image(api, "stall-a", png_bytes())["image_id"]
        assert api.post(f"/images/{ready_one}/complete").status_code == 200
        pending = [upload_image(api, "stall-a", png_bytes())["image_id"] for _ in range(12)]
        stores.seaweed.pause()
        try:
            with ThreadPoolExecutor(12) as pool:
                # 12 requests that need S3, three times the gate's slots.
                stuck = [
                    pool.submit(_timed, api, "POST", f"/images/{image_id}/complete")
                    for image_id in pending
                ]
                time.sleep(0.3)
                health, _ = _timed(api, "GET", "/health")
                get, got = _timed(api, "GET", f"/images/{ready_one}")
                listed, page = _timed(api, "GET", "/images?user_id=stall-a")
                presigned = api.post(
                    "/images/upload", json={"user_id": "stall-a", "content_type": "image/png"}
                )
                ready_time, ready = _timed(api, "GET", "/ready")
                results = [future.result() for future in stuck]
        finally:
            stores.seaweed.resume()
        assert health < 0.5, health
        assert get < 1.0, get
        assert got.status_code == 200
        assert listed < 1.0, listed
        assert page.status_code == 200
        assert presigned.status_code == 201
        assert ready_time < 2.0, ready_time
        assert ready.status_code == 503
        assert "no answer" in ready.json()["checks"]["s3"]
        assert ready.json()["checks"]["dynamodb"] == "ok"
        for elapsed, response in results:
            assert response.status_code == 503, response.text
            assert "S3" in response.json()["message"]
            assert response.headers["Retry-After"]
            assert elapsed <= WORST_CASE_503 + 0.5, elapsed
        assert api.get("/ready").status_code == 200  # recovered by itself


def test_delete_during_an_s3_stall_is_finished_by_the_sweep(
    stores: RealStores, app: AppServer
) -> None:
    storage = app.runtime.storage
    with httpx.Client(base_url=app.url, timeout=60) as api:
        ids = []
        for _ in range(5):
            image_id = upload_image(api, "stall-b", png_bytes())["image_id"]
            assert api.post(f"/images/{image_id}/complete").status_code == 200
            ids.append(image_id)
        stores.seaweed.pause()
        try:
            for image_id in ids:
                assert api.delete(f"/images/{image_id}").status_code == 503
                # Hidden at once, although its object may still be there.
                assert api.get(f"/images/{image_id}").status_code == 404
        finally:
            stores.seaweed.resume()
        time.sleep(1)  # S3 may still carry out the DELETEs it had queued
        Sweeper(app.runtime.service, object_grace_seconds=0).sweep()
        for image_id in ids:
            assert api.get(f"/images/{image_id}").status_code == 404
            assert app.runtime.catalog.get(image_id) is None
            assert storage.head(f"images/{image_id}") is None
        listed = api.get("/images", params={"user_id": "stall-b", "status": "all"}).json()
        assert listed["items"] == []
