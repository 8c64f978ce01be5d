"""In-memory stand-ins behind the service's Storage and Catalog protocols (unit tests only)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cloud_image_service.errors import BackendUnavailable, Conflict
from cloud_image_service.models import Image, ListQuery, ObjectInfo, Page, Status, utcnow


class FakeStorage:
    """Objects in a dict; records every call."""

    def __init__(self) -> None:
        self.objects: dict[str, ObjectInfo] = {}
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

    def presign_get(self, key: str, content_type: str, disposition: str) -> str:
        self.calls.append("presign_get")
        return f"https://s3.test/{key}?get"

    def head(self, key: str) -> ObjectInfo | None:
        self._touch("head")
        return self.objects.get(key)

    def delete(self, key: str) -> None:
        self._touch("delete")
        self.objects.pop(key, None)

    def ping(self) -> None:
        self._touch("ping")


class FakeCatalog:
    """Records in a dict, with the same conditional semantics as DynamoDB."""

    def __init__(self) -> None:
        self.images: dict[str, Image] = {}
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
        self, image_id: str, expected: Status, changes: dict[str, Any], remove: tuple[str, ...] = ()
    ) -> Image | None:
        self._touch("transition")
        image = self.images.get(image_id)
        if image is None or image.status is not expected:
            return None
        values = {k: Status(v) if k == "status" else v for k, v in changes.items()}
        updated = image.replace(**values, **dict.fromkeys(remove))
        self.images[image_id] = updated
        return updated

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
