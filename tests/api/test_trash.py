"""The optional trash over HTTP: DELETE hides, restore brings back, permanent removes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cloud_image_service.background.sweeper import Sweeper
from cloud_image_service.config import Settings
from cloud_image_service.domain.models import Status
from tests.conftest import AppServer, RealStores, start_app
from tests.images import download_url, png_bytes, upload_image


@pytest.fixture(scope="module")
def trash(backend: str, request: pytest.FixtureRequest) -> Iterator[AppServer]:
    values: dict[str, Any] = {"trash_days": 30}
    if backend == "embedded":
        server = start_app(Settings(backend="embedded", cursor_secret="s", **values))
    else:
        stores: RealStores = request.getfixturevalue("real_stores")
        server = start_app(stores.settings(**values))
    yield server
    server.stop()


def _ready(api: httpx.Client, user_id: str) -> str:
    image_id: str = upload_image(api, user_id, png_bytes())["image_id"]
    assert api.post(f"/images/{image_id}/complete").status_code == 200
    return image_id


def _listed(api: httpx.Client, user_id: str, status: str) -> list[str]:
    page = api.get("/images", params={"user_id": user_id, "status": status}).json()
    return [image["image_id"] for image in page["items"]]


def test_delete_moves_to_the_trash_and_restore_brings_back(trash: AppServer, user_id: str) -> None:
    with httpx.Client(base_url=trash.url, timeout=30) as api:
        image_id = _ready(api, user_id)
        assert api.delete(f"/images/{image_id}").status_code == 200
        assert api.get(f"/images/{image_id}").status_code == 404
        assert api.get(f"/images/{image_id}/download").status_code == 404
        assert api.delete(f"/images/{image_id}").status_code == 404  # a retry cannot purge it
        assert _listed(api, user_id, "ready") == []
        assert _listed(api, user_id, "all") == []
        assert _listed(api, user_id, "trashed") == [image_id]
        trashed = api.get("/images", params={"user_id": user_id, "status": "trashed"}).json()
        assert trashed["items"][0]["trashed_at"]
        restored = api.post(f"/images/{image_id}/restore")
        assert restored.status_code == 200
        assert restored.json()["status"] == "ready"
        assert restored.json()["trashed_at"] is None
        url = download_url(api, image_id)
        assert httpx.get(url, timeout=30).content == png_bytes()
        again = api.post(f"/images/{image_id}/restore")
        assert again.status_code == 409
        assert again.json()["code"] == "not_trashed"


def test_permanent_delete_removes_at_once(trash: AppServer, user_id: str) -> None:
    with httpx.Client(base_url=trash.url, timeout=30) as api:
        image_id = _ready(api, user_id)
        api.delete(f"/images/{image_id}")
        assert api.delete(f"/images/{image_id}", params={"permanent": "true"}).status_code == 200
        assert _listed(api, user_id, "trashed") == []
        assert trash.runtime.storage.head(f"images/{image_id}") is None
        assert api.post(f"/images/{image_id}/restore").status_code == 404


def test_the_sweep_purges_trash_after_its_days(trash: AppServer, user_id: str) -> None:
    runtime = trash.runtime
    with httpx.Client(base_url=trash.url, timeout=30) as api:
        image_id = _ready(api, user_id)
        api.delete(f"/images/{image_id}")
        Sweeper(runtime.service, 0).sweep()
        assert _listed(api, user_id, "trashed") == [image_id]  # 30 days to go
        # The days are over: due in the past.
        runtime.catalog.transition(image_id, Status.TRASHED, {"status": "trashed", "due_at": 0})
        assert Sweeper(runtime.service, 0).sweep().trash_purged >= 1
        assert _listed(api, user_id, "trashed") == []
        assert runtime.storage.head(f"images/{image_id}") is None
