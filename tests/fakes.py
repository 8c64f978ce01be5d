"""In-memory stand-ins behind the service's Storage and Catalog protocols (unit tests only)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from cloud_image_service.domain.errors import BackendUnavailable, Conflict
from cloud_image_service.domain.models import (
    Image,
    ListQuery,
    ObjectInfo,
    Page,
    Status,
    StoredObject,
    utcnow,
)
from cloud_image_service.domain.ports import Admission, Expected


class FakeStorage:
    """Objects in a dict; records every call."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.modified: dict[str, datetime] = {}
        self.calls: list[str] = []
        self.down = False

    def _touch(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise BackendUnavailable("S3", "down")

    def expiry(self) -> datetime:
        return utcnow() + timedelta(seconds=300)

    def presign_put(self, key: str, content_type: str) -> str:
        self.calls.append("presign_put")
        return f"https://s3.test/{key}?type={content_type}"

    def presign_post(self, key: str, content_type: str, max_bytes: int) -> dict[str, Any]:
        self.calls.append("presign_post")
        return {"url": "https://s3.test/", "fields": {"key": key, "Content-Type": content_type}}

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO | None]:
        self._touch("open")
        data = self.blobs.get(key)
        yield io.BytesIO(data) if data is not None else None

    def objects(self, prefix: str, older_than: datetime) -> Iterator[list[StoredObject]]:
        self._touch("objects")
        yield [
            StoredObject(key, len(data), self.modified.get(key, utcnow()))
            for key, data in self.blobs.items()
            if key.startswith(prefix) and self.modified.get(key, utcnow()) < older_than
        ]

    def copy(self, source: str, dest: str, content_type: str, if_match: str | None) -> bool:
        self._touch("copy")
        data = self.blobs.get(source)
        if data is None or (if_match is not None and if_match != _etag(data)):
            return False
        self.put(dest, data)
        return True

    def truncate(self, key: str, length: int, content_type: str) -> None:
        self._touch("truncate")
        self.put(key, self.blobs[key][:length])

    def put(
        self, key: str, data: bytes, content_type: str | None = None, age_seconds: float = 0
    ) -> None:
        """Store an object as if uploaded `age_seconds` ago."""
        self.blobs[key] = data
        self.modified[key] = utcnow() - timedelta(seconds=age_seconds)

    def presign_get(self, key: str, content_type: str, disposition: str) -> str:
        self.calls.append("presign_get")
        return f"https://s3.test/{key}?get"

    def head(self, key: str) -> ObjectInfo | None:
        self._touch("head")
        data = self.blobs.get(key)
        if data is None:
            return None
        return ObjectInfo(size=len(data), content_type=None, etag=_etag(data))

    def delete(self, key: str) -> None:
        self._touch("delete")
        self.blobs.pop(key, None)

    def ping(self) -> None:
        self._touch("ping")


class FakeCatalog:
    """Records in a dict, with the same conditional semantics as DynamoDB."""

    def __init__(self) -> None:
        self.images: dict[str, Image] = {}
        self.claims: dict[str, tuple[str, int]] = {}
        self.calls: list[str] = []
        self.down = False

    def _touch(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise BackendUnavailable("DynamoDB", "down")

    def create(self, image: Image, admission: Admission | None = None) -> None:
        self._touch("create")
        if admission is not None:
            admission.admit()
        if image.image_id in self.images:
            raise Conflict("exists")
        self.images[image.image_id] = image

    def get(self, image_id: str) -> Image | None:
        self._touch("get")
        return self.images.get(image_id)

    def delete(self, image_id: str, expected: Expected) -> bool:
        self._touch("delete")
        image = self.images.get(image_id)
        if image is None or image.status not in _statuses(expected):
            return False
        del self.images[image_id]
        return True

    def transition(
        self,
        image_id: str,
        expected: Expected,
        changes: dict[str, Any],
        remove: tuple[str, ...] = (),
        claim: str | None = None,
    ) -> Image | None:
        self._touch("transition")
        image = self.images.get(image_id)
        if image is None or image.status not in _statuses(expected):
            return None
        if claim is not None and self.claims.get(image_id, ("", 0))[0] != claim:
            return None
        fields = {f.name for f in dataclasses.fields(Image)}
        values = {k: Status(v) if k == "status" else v for k, v in changes.items() if k in fields}
        if "status" in changes and "due_at" not in changes:
            values["due_at"] = None
            values["due_kind"] = None
        elif "due_at" in changes:
            values["due_kind"] = changes.get("due_kind") or changes.get("status")
        updated = image.replace(**values, **dict.fromkeys(remove))
        self.images[image_id] = updated
        if updated.status is not Status.PENDING:
            self.claims.pop(image_id, None)
        return updated

    def claim(self, image_id: str, token: str, now: int, lease_seconds: int) -> Image | None:
        self._touch("claim")
        image = self.images.get(image_id)
        held = self.claims.get(image_id)
        if image is None or image.status is not Status.PENDING:
            return None
        if held and held[1] >= now and held[0] != token:
            return None
        self.claims[image_id] = (token, now + lease_seconds)
        image = image.replace(claim_until=now + lease_seconds)
        self.images[image_id] = image
        return image

    def release(self, image_id: str, token: str) -> None:
        if self.claims.get(image_id, ("", 0))[0] == token:
            del self.claims[image_id]

    def due(self, kind: str, now: int, limit: int = 100) -> list[Image]:
        def due_at(image: Image) -> datetime | None:
            return image.due_at or (image.expires_at if image.status is Status.PENDING else None)

        return [
            image
            for image in list(self.images.values())
            if (image.due_kind or image.status.value) == kind
            and (when := due_at(image)) is not None
            and int(when.timestamp()) <= now
        ][:limit]

    def take_due(self, image_id: str, kind: str, seen: datetime | None, until: datetime) -> bool:
        image = self.images.get(image_id)
        if image is None or (image.due_kind or image.status.value) != kind or image.due_at != seen:
            return False
        self.images[image_id] = image.replace(due_at=until)
        return True

    def scan(self) -> Iterator[list[Image]]:
        yield list(self.images.values())

    def statuses(self, image_ids: list[str]) -> dict[str, Status]:
        return {i: self.images[i].status for i in image_ids if i in self.images}

    def list_page(self, query: ListQuery, limit: int, start: dict[str, str] | None) -> Page:
        self._touch("list")
        matching = sorted(
            (
                image
                for image in self.images.values()
                if query.user_id in (None, image.user_id)
                and (query.sha256 is None or query.sha256 == image.sha256)
                and (query.tag is None or query.tag in image.tags)
                and image.status in query.statuses
            ),
            key=lambda image: (image.created_at, image.image_id),
            reverse=True,
        )
        ids = [image.image_id for image in matching]
        offset = ids.index(start["image_id"]) + 1 if start else 0
        page = matching[offset : offset + limit]
        more = offset + limit < len(matching)
        return Page(page, {"image_id": page[-1].image_id} if more and page else None)

    def ping(self) -> None:
        self._touch("ping")


def _etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


def _statuses(expected: Expected) -> tuple[Status, ...]:
    return (expected,) if isinstance(expected, Status) else expected
