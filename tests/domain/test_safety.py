"""Unit tests of the safety rules: immutable originals, trailing data, trash, memory budget."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import replace

import pytest

from cloud_image_service.background.sweeper import Sweeper
from cloud_image_service.domain.budget import MemoryBudget, decoded_bytes
from cloud_image_service.domain.errors import (
    ImageNotFound,
    NotTrashed,
    ValidationFailed,
    VerificationBusy,
)
from cloud_image_service.domain.models import ListQuery, Status, utcnow
from cloud_image_service.domain.pagination import CursorCodec
from cloud_image_service.domain.service import ImageService, Limits
from cloud_image_service.domain.verify import TrailingData
from tests.fakes import FakeCatalog, FakeStorage
from tests.images import png_bytes

ZIP = b"PK\x03\x04" + b"\0" * 100


def make(
    trailing: TrailingData = "strip", trash_days: int = 0
) -> tuple[ImageService, FakeStorage, FakeCatalog]:
    storage, catalog = FakeStorage(), FakeCatalog()
    limits = Limits(max_upload_bytes=10_000, trailing_data=trailing, trash_days=trash_days)
    return ImageService(storage, catalog, CursorCodec(b"k"), limits), storage, catalog


def ready_image(service: ImageService, storage: FakeStorage, data: bytes) -> str:
    image = service.create_upload("alice", "image/png").image
    storage.put(image.upload_key, data)
    return service.complete(image.image_id).image_id


def test_uploads_never_write_the_served_key() -> None:
    service, _, _ = make()
    upload = service.create_upload("alice", "image/png")
    assert upload.image.upload_key in upload.upload_url
    assert upload.upload_form["fields"]["key"] == upload.image.upload_key
    assert upload.image.key not in upload.upload_url


def test_a_put_replayed_after_complete_changes_nothing_served() -> None:
    service, storage, catalog = make()
    original = png_bytes(3, 3)
    image_id = ready_image(service, storage, original)
    key = catalog.images[image_id].key
    storage.put(f"uploads/{image_id}", b"<html>not an image</html>")  # the URL still works
    service.download(image_id)
    ready = catalog.images[image_id]
    assert storage.blobs[key] == original
    assert ready.sha256 == hashlib.sha256(storage.blobs[key]).hexdigest()
    assert ready.size == len(storage.blobs[key])


def test_trailing_data_is_stripped_by_default() -> None:
    service, storage, catalog = make()
    image_id = ready_image(service, storage, png_bytes() + ZIP)
    image = catalog.images[image_id]
    assert storage.blobs[image.key] == png_bytes()
    assert image.size == len(png_bytes())
    assert image.trailing_bytes_removed == len(ZIP)
    assert image.sha256 == hashlib.sha256(png_bytes()).hexdigest()


def test_trailing_data_can_be_rejected_or_kept() -> None:
    service, storage, catalog = make("reject")
    image = service.create_upload("alice", "image/png").image
    storage.put(image.upload_key, png_bytes() + ZIP)
    with pytest.raises(ValidationFailed, match="follow the image's end marker"):
        service.complete(image.image_id)
    service, storage, catalog = make("keep")
    image_id = ready_image(service, storage, png_bytes() + ZIP)
    assert storage.blobs[catalog.images[image_id].key] == png_bytes() + ZIP
    assert catalog.images[image_id].trailing_bytes_removed is None


def test_trash_hides_restores_and_purges() -> None:
    service, storage, catalog = make(trash_days=30)
    image_id = ready_image(service, storage, png_bytes())
    service.delete(image_id)
    assert catalog.images[image_id].status is Status.TRASHED
    for hidden in (service.get, service.download, service.delete):
        with pytest.raises(ImageNotFound):
            hidden(image_id)
    trashed, _ = service.list(ListQuery("alice", statuses=(Status.TRASHED,)), 10, None)
    assert [i.image_id for i in trashed] == [image_id]
    assert service.restore(image_id).status is Status.READY
    with pytest.raises(NotTrashed):
        service.restore(image_id)
    service.delete(image_id)
    assert Sweeper(service, 0).sweep().trash_purged == 0  # not due yet
    due = utcnow().replace(year=2000)
    catalog.images[image_id] = replace(catalog.images[image_id], due_at=due)
    assert Sweeper(service, 0).sweep().trash_purged == 1
    assert catalog.images == {}
    assert storage.blobs == {}


def test_permanent_delete_skips_the_trash() -> None:
    service, storage, catalog = make(trash_days=30)
    image_id = ready_image(service, storage, png_bytes())
    service.delete(image_id, permanent=True)
    assert catalog.images == {}
    assert storage.blobs == {}


def test_memory_budget_waits_for_room_then_gives_up() -> None:
    budget = MemoryBudget(100, wait_seconds=0.3)
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with budget.reserve(80):
            entered.set()
            release.wait(2)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(2)
    start = time.monotonic()
    with pytest.raises(VerificationBusy) as busy, budget.reserve(30):
        pass
    assert 0.25 < time.monotonic() - start < 1.5
    assert busy.value.headers()["Retry-After"]
    threading.Timer(0.1, release.set).start()
    with budget.reserve(30):  # waits until the holder is done
        assert budget.in_use == 30
    holder.join()
    with budget.reserve(10_000):  # larger than the whole budget: runs alone
        assert budget.in_use == 100


def test_decoded_bytes_count_bands_and_depth() -> None:
    assert decoded_bytes(10, 10, "L") == 100
    assert decoded_bytes(10, 10, "I;16") == 200
    assert decoded_bytes(10, 10, "RGBA") == 400
    assert decoded_bytes(10, 10, "RGB") == 400  # Pillow pads RGB to 4 bytes a pixel
