"""Unit tests of the lifecycle rules, on in-memory fakes behind the same protocols."""

from __future__ import annotations

import pytest

from cloud_image_service.errors import BackendUnavailable, ImageNotFound, NotUploaded
from cloud_image_service.models import ListQuery, ObjectInfo, Status
from cloud_image_service.pagination import CursorCodec
from cloud_image_service.service import ImageService, canonical_id, content_disposition
from tests.fakes import FakeCatalog, FakeStorage


@pytest.fixture
def parts() -> tuple[ImageService, FakeStorage, FakeCatalog]:
    storage, catalog = FakeStorage(), FakeCatalog()
    return ImageService(storage, catalog, CursorCodec(b"k")), storage, catalog


def test_non_uuid_id_makes_no_backend_call(
    parts: tuple[ImageService, FakeStorage, FakeCatalog],
) -> None:
    service, storage, catalog = parts
    for action in (service.get, service.download, service.delete):
        with pytest.raises(ImageNotFound):
            action("../etc")
    assert storage.calls == []
    assert catalog.calls == []


def test_canonical_id_accepts_uppercase() -> None:
    assert canonical_id("6F9619FF-8B86-4011-B42D-00C04FC964FF") == (
        "6f9619ff-8b86-4011-b42d-00c04fc964ff"
    )


def test_no_url_leaves_when_the_record_cannot_be_written(
    parts: tuple[ImageService, FakeStorage, FakeCatalog],
) -> None:
    service, _, catalog = parts
    catalog.down = True
    with pytest.raises(BackendUnavailable):
        service.create_upload("alice", "image/png")
    assert catalog.images == {}


def test_download_marks_ready_with_size(
    parts: tuple[ImageService, FakeStorage, FakeCatalog],
) -> None:
    service, storage, catalog = parts
    image = service.create_upload("alice", "image/png").image
    with pytest.raises(NotUploaded):
        service.download(image.image_id)
    storage.objects[image.key] = ObjectInfo(size=42, content_type="image/png")
    service.download(image.image_id)
    stored = catalog.images[image.image_id]
    assert (stored.status, stored.size) == (Status.READY, 42)


def test_delete_keeps_the_record_when_s3_fails(
    parts: tuple[ImageService, FakeStorage, FakeCatalog],
) -> None:
    service, storage, catalog = parts
    image = service.create_upload("alice", "image/png").image
    storage.down = True
    with pytest.raises(BackendUnavailable):
        service.delete(image.image_id)
    assert image.image_id in catalog.images  # retryable, nothing half-deleted
    storage.down = False
    service.delete(image.image_id)
    assert catalog.images == {}


def test_list_pages_with_cursor(parts: tuple[ImageService, FakeStorage, FakeCatalog]) -> None:
    service, _, _ = parts
    ids = [service.create_upload("bob", "image/png").image.image_id for _ in range(5)]
    query = ListQuery(user_id="bob")
    first, cursor = service.list(query, 3, None)
    second, end = service.list(query, 3, cursor)
    assert [i.image_id for i in first + second] == list(reversed(ids))
    assert end is None


def test_content_disposition_escapes_quotes_and_non_ascii(
    parts: tuple[ImageService, FakeStorage, FakeCatalog],
) -> None:
    service, _, _ = parts
    image = service.create_upload("a", "image/png", filename='we"ird ö.png').image
    header = content_disposition(image)
    assert header.startswith('attachment; filename="we_ird _.png"')
    assert "filename*=UTF-8''we%22ird%20%C3%B6.png" in header
