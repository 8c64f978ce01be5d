"""Unit tests of the lifecycle rules, on in-memory fakes behind the same protocols."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest

from cloud_image_service.background.sweeper import Sweeper
from cloud_image_service.domain.errors import (
    BackendUnavailable,
    ImageNotFound,
    NotUploaded,
    PayloadTooLarge,
    ValidationFailed,
    VerificationInProgress,
)
from cloud_image_service.domain.models import ListQuery, Status, utcnow
from cloud_image_service.domain.pagination import CursorCodec
from cloud_image_service.domain.service import (
    ImageService,
    Limits,
    canonical_id,
    content_disposition,
    image_id_of,
)
from tests.fakes import FakeCatalog, FakeStorage
from tests.images import png_bytes

Parts = tuple[ImageService, FakeStorage, FakeCatalog]


@pytest.fixture
def parts() -> Parts:
    storage, catalog = FakeStorage(), FakeCatalog()
    limits = Limits(max_upload_bytes=10_000, confirm_wait_seconds=0.3)
    return ImageService(storage, catalog, CursorCodec(b"k"), limits), storage, catalog


def test_non_uuid_id_makes_no_backend_call(parts: Parts) -> None:
    service, storage, catalog = parts
    for action in (service.get, service.download, service.delete, service.complete):
        with pytest.raises(ImageNotFound):
            action("../etc")
    assert storage.calls == []
    assert catalog.calls == []


def test_canonical_id_accepts_uppercase() -> None:
    assert canonical_id("6F9619FF-8B86-4011-B42D-00C04FC964FF") == (
        "6f9619ff-8b86-4011-b42d-00c04fc964ff"
    )
    assert image_id_of("images/6F9619FF-8B86-4011-B42D-00C04FC964FF") is not None
    assert image_id_of("other/6f9619ff-8b86-4011-b42d-00c04fc964ff") is None
    assert image_id_of("images/nope") is None


def test_no_url_leaves_when_the_record_cannot_be_written(parts: Parts) -> None:
    service, _, catalog = parts
    catalog.down = True
    with pytest.raises(BackendUnavailable):
        service.create_upload("alice", "image/png")
    assert catalog.images == {}


def test_declared_size_above_the_limit_is_413_before_signing(parts: Parts) -> None:
    service, storage, catalog = parts
    with pytest.raises(PayloadTooLarge):
        service.create_upload("alice", "image/png", size=10_001)
    assert storage.calls == []
    assert catalog.images == {}


def test_download_verifies_a_pending_upload(parts: Parts) -> None:
    service, storage, catalog = parts
    image = service.create_upload("alice", "image/png").image
    with pytest.raises(NotUploaded):
        service.download(image.image_id)
    data = png_bytes(3, 2)
    storage.put(image.upload_key, data)
    service.download(image.image_id)
    stored = catalog.images[image.image_id]
    assert (stored.status, stored.size, stored.width, stored.height) == (
        Status.READY,
        len(data),
        3,
        2,
    )
    assert stored.expires_at is None  # a ready record never expires


def test_html_declared_as_png_is_rejected_and_deleted(parts: Parts) -> None:
    service, storage, catalog = parts
    image = service.create_upload("alice", "image/png").image
    storage.put(image.upload_key, b"<html><script>alert(1)</script></html>")
    with pytest.raises(ValidationFailed, match="does not match image/png"):
        service.complete(image.image_id)
    assert storage.blobs == {}  # neither the upload nor its copy is kept
    assert catalog.images[image.image_id].status is Status.REJECTED
    with pytest.raises(ValidationFailed):  # the same answer, every time
        service.complete(image.image_id)
    with pytest.raises(ValidationFailed):
        service.download(image.image_id)


def test_oversize_object_is_rejected_without_reading_it(parts: Parts) -> None:
    service, storage, _ = parts
    image = service.create_upload("alice", "image/png").image
    storage.put(image.upload_key, png_bytes() + b"\0" * 20_000)
    with pytest.raises(ValidationFailed, match="above the limit"):
        service.complete(image.image_id)
    assert "open" not in storage.calls


def test_complete_twice_gives_the_same_result(parts: Parts) -> None:
    service, storage, _ = parts
    image = service.create_upload("alice", "image/png").image
    storage.put(image.upload_key, png_bytes())
    first = service.complete(image.image_id)
    second = service.complete(image.image_id)
    assert first == second
    assert first.status is Status.READY


def test_a_claimed_image_is_not_verified_twice(parts: Parts) -> None:
    service, storage, catalog = parts
    image = service.create_upload("alice", "image/png").image
    storage.put(image.upload_key, png_bytes())
    catalog.claims[image.image_id] = ("other-worker", 2**40)
    catalog.images[image.image_id] = replace(image, claim_until=2**40)
    with pytest.raises(VerificationInProgress) as raised:  # waited, then a 409: not "pending"
        service.confirm(catalog.images[image.image_id])
    assert raised.value.headers()["Retry-After"] == "5"
    assert "open" not in storage.calls


def test_a_stale_claim_is_taken_over_at_once(parts: Parts) -> None:
    service, storage, catalog = parts
    image = service.create_upload("alice", "image/png").image
    storage.put(image.upload_key, png_bytes())
    catalog.claims[image.image_id] = ("killed-worker", int(time.time()) - 1)
    assert service.complete(image.image_id).status is Status.READY


def test_store_outage_during_verification_releases_the_claim(parts: Parts) -> None:
    service, storage, catalog = parts
    image = service.create_upload("alice", "image/png").image
    storage.put(image.upload_key, png_bytes())
    original = storage.open

    def broken(key: str) -> object:
        raise BackendUnavailable("S3", "down")

    storage.open = broken  # type: ignore[method-assign,assignment]
    with pytest.raises(BackendUnavailable):
        service.complete(image.image_id)
    assert image.image_id not in catalog.claims
    storage.open = original  # type: ignore[method-assign]
    assert service.complete(image.image_id).status is Status.READY


def test_an_upload_taken_out_by_another_verifier_is_verified_not_409(parts: Parts) -> None:
    service, storage, _catalog = parts
    image = service.create_upload("alice", "image/png").image
    storage.put(image.upload_key, png_bytes())
    original = storage.copy

    def raced(source: str, dest: str, content_type: str, if_match: str | None) -> bool:
        # Between our HEAD and our copy, another verifier copied it out, then failed.
        original(source, dest, content_type, if_match)
        storage.blobs.pop(source)
        return False

    storage.copy = raced  # type: ignore[method-assign]
    assert service.complete(image.image_id).status is Status.READY


def test_sweep_rejects_expired_pending_and_deletes_strays(parts: Parts) -> None:
    service, storage, catalog = parts
    abandoned = service.create_upload("alice", "image/png").image
    late = service.create_upload("alice", "image/png").image
    past = utcnow() - timedelta(seconds=1)
    for image in (abandoned, late):
        catalog.images[image.image_id] = replace(catalog.images[image.image_id], expires_at=past)
    storage.put(late.upload_key, png_bytes())
    storage.put("images/00000000-0000-4000-8000-000000000000", b"stray", age_seconds=10)
    report = Sweeper(service, object_grace_seconds=0).sweep()
    assert catalog.images[abandoned.image_id].status is Status.REJECTED
    assert "expired" in (catalog.images[abandoned.image_id].reason or "")
    assert catalog.images[late.image_id].status is Status.READY  # bytes were there: kept
    assert list(storage.blobs) == [late.key]
    assert (report.expired_rejected, report.expired_verified, report.stray_objects_deleted) == (
        1,
        1,
        1,
    )


def test_a_delete_that_fails_half_way_is_hidden_and_finished_later(parts: Parts) -> None:
    service, storage, catalog = parts
    image = service.create_upload("alice", "image/png").image
    storage.put(image.upload_key, png_bytes())
    service.complete(image.image_id)
    storage.down = True
    with pytest.raises(BackendUnavailable):
        service.delete(image.image_id)
    assert catalog.images[image.image_id].status is Status.DELETING  # marked first
    with pytest.raises(ImageNotFound):  # and hidden from reads at once
        service.get(image.image_id)
    storage.down = False
    assert Sweeper(service, object_grace_seconds=0).sweep().deletes_finished == 1
    assert catalog.images == {}
    assert storage.blobs == {}


def test_list_pages_with_cursor(parts: Parts) -> None:
    service, _, _ = parts
    ids = [service.create_upload("bob", "image/png").image.image_id for _ in range(5)]
    query = ListQuery(user_id="bob", statuses=tuple(Status))
    first, cursor = service.list(query, 3, None)
    second, end = service.list(query, 3, cursor)
    assert [i.image_id for i in first + second] == list(reversed(ids))
    assert end is None
    assert service.list(ListQuery(user_id="bob"), 3, None)[0] == []  # none is ready


def test_content_disposition_escapes_quotes_and_non_ascii(parts: Parts) -> None:
    service, _, _ = parts
    image = service.create_upload("a", "image/png", filename='we"ird ö.png').image
    header = content_disposition(image)
    assert header.startswith('attachment; filename="we_ird _.png"')
    assert "filename*=UTF-8''we%22ird%20%C3%B6.png" in header
