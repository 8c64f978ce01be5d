"""In-memory stand-ins behind the service's Storage and Catalog protocols (unit tests only)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from cloud_image_service.domain.errors import BackendUnavailable, Conflict
from cloud_image_service.domain.models import Image, ListQuery, ObjectInfo, Page, Status, utcnow


class FakeStorage:
    """Objects in a dict; records every call."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
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

    def objects(self, prefix: str, older_than: datetime) -> Iterator[list[str]]:
        self._touch("objects")
        yield [key for key in self.blobs if key.startswith(prefix)]

    def presign_get(self, key: str, content_type: str, disposition: str) -> str:
        self.calls.append("presign_get")
        return f"https://s3.test/{key}?get"

    def head(self, key: str) -> ObjectInfo | None:
        self._touch("head")
        data = self.blobs.get(key)
        return ObjectInfo(size=len(data), content_type=None) if data is not None else None

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

    def create(self, image: Image) -> None:
        self._touch("create")
        if image.image_id in self.images:
            raise Conflict("exists")
        self.images[image.image_id] = image

    def get(self, image_id: str) -> Image | None:
        self._touch("get")
        return self.images.get(image_id)

    def delete(self, image_id: str) -> bool:
        self._touch("delete")
        return self.images.pop(image_id, None) is not None

    def transition(
        self,
        image_id: str,
        expected: Status,
        changes: dict[str, Any],
        remove: tuple[str, ...] = (),
        claim: str | None = None,
    ) -> Image | None:
        self._touch("transition")
        image = self.images.get(image_id)
        if image is None or image.status is not expected:
            return None
        if claim is not None and self.claims.get(image_id, ("", 0))[0] != claim:
            return None
        values = {k: Status(v) if k == "status" else v for k, v in changes.items()}
        updated = image.replace(**values, **dict.fromkeys(remove))
        self.images[image_id] = updated
        if updated.status is not Status.PENDING:
            self.claims.pop(image_id, None)
        return updated

    def claim(self, image_id: str, token: str, now: int, lease_seconds: int) -> Image | None:
        self._touch("claim")
        image = self.images.get(image_id)
        held = self.claims.get(image_id)
        if image is None or image.status is not Status.PENDING or (held and held[1] >= now):
            return None
        self.claims[image_id] = (token, now + lease_seconds)
        return image

    def release(self, image_id: str, token: str) -> None:
        if self.claims.get(image_id, ("", 0))[0] == token:
            del self.claims[image_id]

    def expired_pending(self, now: int, limit: int = 100) -> list[Image]:
        return [
            image
            for image in self.images.values()
            if image.status is Status.PENDING
            and image.expires_at is not None
            and image.expires_at.timestamp() < now
        ][:limit]

    def statuses(self, image_ids: list[str]) -> dict[str, Status]:
        return {i: self.images[i].status for i in image_ids if i in self.images}

    def list_page(self, query: ListQuery, limit: int, start: dict[str, str] | None) -> Page:
        self._touch("list")
        matching = sorted(
            (
                image
                for image in self.images.values()
                if query.user_id in (None, image.user_id)
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
