"""The lifecycle rules of images, independent of HTTP and of boto3."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

from cloud_image_service.errors import BackendUnavailable, ImageNotFound, NotUploaded
from cloud_image_service.models import Image, ListQuery, ObjectInfo, Page, Status, utcnow
from cloud_image_service.pagination import CursorCodec

EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/avif": ".avif",
}


class Storage(Protocol):
    """What the service needs of S3 (implemented by `storage.S3Storage`)."""

    def expiry(self) -> datetime: ...
    def presign_put(self, key: str, content_type: str) -> str: ...
    def presign_get(self, key: str, content_type: str, disposition: str) -> str: ...
    def head(self, key: str) -> ObjectInfo | None: ...
    def delete(self, key: str) -> None: ...
    def ping(self) -> None: ...


class Catalog(Protocol):
    """What the service needs of DynamoDB (implemented by `catalog.ImageCatalog`)."""

    def create(self, image: Image) -> None: ...
    def get(self, image_id: str) -> Image | None: ...
    def delete(self, image_id: str) -> bool: ...
    def transition(
        self, image_id: str, expected: Status, changes: dict[str, Any], remove: tuple[str, ...] = ()
    ) -> Image | None: ...
    def list_page(self, query: ListQuery, limit: int, start: dict[str, str] | None) -> Page: ...
    def ping(self) -> None: ...


@dataclass(frozen=True)
class NewUpload:
    """A created record and the presigned PUT for its bytes."""

    image: Image
    upload_url: str
    expires_at: datetime


@dataclass(frozen=True)
class Download:
    """A presigned GET and when it stops working."""

    url: str
    expires_at: datetime


def canonical_id(image_id: str) -> str:
    """The canonical form of an image id; anything not a UUID is simply not found."""
    try:
        return str(uuid.UUID(image_id))
    except ValueError:
        raise ImageNotFound(image_id) from None


def content_disposition(image: Image, disposition: str = "attachment") -> str:
    """RFC 6266 header: an ASCII fallback name plus the exact UTF-8 name."""
    name = image.filename or f"{image.image_id}{EXTENSIONS.get(image.content_type, '')}"
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


class ImageService:
    """Creates, lists, serves and deletes images; the API calls nothing else."""

    def __init__(self, storage: Storage, catalog: Catalog, cursors: CursorCodec) -> None:
        self.storage = storage
        self.catalog = catalog
        self.cursors = cursors

    def create_upload(
        self,
        user_id: str,
        content_type: str,
        tags: tuple[str, ...] = (),
        description: str | None = None,
        filename: str | None = None,
    ) -> NewUpload:
        """Record a pending image and presign the PUT of its bytes."""
        image = Image(
            image_id=str(uuid.uuid4()),
            user_id=user_id,
            content_type=content_type,
            created_at=utcnow(),
            tags=tags,
            description=description,
            filename=filename,
        )
        # Sign first (no I/O): if the record cannot be written, no URL ever leaves.
        expires_at = self.storage.expiry()
        url = self.storage.presign_put(image.key, content_type)
        self.catalog.create(image)
        return NewUpload(image, url, expires_at)

    def get(self, image_id: str) -> Image:
        """The record of an image."""
        image = self.catalog.get(canonical_id(image_id))
        if image is None:
            raise ImageNotFound(image_id)
        return image

    def list(
        self, query: ListQuery, limit: int, cursor: str | None
    ) -> tuple[list[Image], str | None]:
        """One page of images and the cursor of the next (None at the end)."""
        start = self.cursors.decode(cursor, query) if cursor else None
        page = self.catalog.list_page(query, limit, start)
        next_cursor = self.cursors.encode(page.next_key, query) if page.next_key else None
        return page.items, next_cursor

    def download(self, image_id: str, disposition: str = "attachment") -> Download:
        """A presigned GET forcing the stored type and file name; 409 before any upload."""
        image = self.get(image_id)
        info = self.storage.head(image.key)
        if info is None:
            raise NotUploaded(image.image_id)
        if image.status is Status.PENDING:
            self.catalog.transition(
                image.image_id, Status.PENDING, {"status": "ready", "size": info.size}
            )
        expires_at = self.storage.expiry()
        url = self.storage.presign_get(
            image.key, image.content_type, content_disposition(image, disposition)
        )
        return Download(url, expires_at)

    def delete(self, image_id: str) -> None:
        """Remove the bytes, then the record: a failure in between leaves a retryable record."""
        image = self.get(image_id)
        self.storage.delete(image.key)
        if not self.catalog.delete(image.image_id):
            raise ImageNotFound(image_id)

    def readiness(self) -> dict[str, str]:
        """'ok' or the failure of each store."""
        checks: dict[str, str] = {}
        for name, ping in (("s3", self.storage.ping), ("dynamodb", self.catalog.ping)):
            try:
                ping()
                checks[name] = "ok"
            except BackendUnavailable as exc:
                checks[name] = exc.message
        return checks
