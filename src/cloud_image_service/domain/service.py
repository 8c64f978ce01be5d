"""The lifecycle rules of images, independent of HTTP and of boto3.

pending ──verify ok──▶ ready
   │
   └──verify fails / expired──▶ rejected (reason kept, object deleted)

Every transition is a conditional write, so a duplicate or late signal changes nothing.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from cloud_image_service.domain.errors import (
    BackendUnavailable,
    ImageNotFound,
    NotUploaded,
    PayloadTooLarge,
    ValidationFailed,
)
from cloud_image_service.domain.models import KEY_PREFIX, Image, ListQuery, Status, utcnow
from cloud_image_service.domain.pagination import CursorCodec
from cloud_image_service.domain.ports import Catalog, Storage
from cloud_image_service.domain.verify import ImageRejected, verify_image

log = logging.getLogger(__name__)

EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/avif": ".avif",
}
CLAIM_LEASE_SECONDS = 60  # a verifier that dies lets another take over after this


@dataclass(frozen=True)
class Limits:
    """What an upload may be, and how long unfinished records live."""

    max_upload_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000
    pending_ttl_seconds: int = 3600
    rejected_ttl_seconds: int = 7 * 24 * 3600
    confirm_wait_seconds: float = 10.0


@dataclass(frozen=True)
class NewUpload:
    """A created record, the presigned PUT and the presigned POST form for its bytes."""

    image: Image
    upload_url: str
    upload_form: dict[str, Any]
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


def image_id_of(key: str) -> str | None:
    """The image id of an object key made by `Image.key`, else None."""
    if not key.startswith(KEY_PREFIX):
        return None
    try:
        return str(uuid.UUID(key.removeprefix(KEY_PREFIX)))
    except ValueError:
        return None


def content_disposition(image: Image, disposition: str = "attachment") -> str:
    """RFC 6266 header: an ASCII fallback name plus the exact UTF-8 name."""
    name = image.filename or f"{image.image_id}{EXTENSIONS.get(image.content_type, '')}"
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _not_rejected(image: Image) -> Image:
    """The image, unless it was rejected: then a 422 with the reason."""
    if image.status is Status.REJECTED:
        raise ValidationFailed(f"image was rejected: {image.reason}")
    return image


class ImageService:
    """Creates, verifies, lists, serves and deletes images; the API calls nothing else."""

    def __init__(
        self, storage: Storage, catalog: Catalog, cursors: CursorCodec, limits: Limits | None = None
    ) -> None:
        self.storage = storage
        self.catalog = catalog
        self.cursors = cursors
        self.limits = limits or Limits()

    def create_upload(
        self,
        user_id: str,
        content_type: str,
        tags: tuple[str, ...] = (),
        description: str | None = None,
        filename: str | None = None,
        size: int | None = None,
    ) -> NewUpload:
        """Record a pending image and presign the PUT and the POST of its bytes."""
        limit = self.limits.max_upload_bytes
        if size is not None and size > limit:
            raise PayloadTooLarge(f"size {size} is above the upload limit of {limit} bytes")
        expires_at = self.storage.expiry()
        image = Image(
            image_id=str(uuid.uuid4()),
            user_id=user_id,
            content_type=content_type,
            created_at=utcnow(),
            tags=tags,
            description=description,
            filename=filename,
            expires_at=expires_at + timedelta(seconds=self.limits.pending_ttl_seconds),
        )
        # Sign first (no I/O): if the record cannot be written, no URL ever leaves.
        url = self.storage.presign_put(image.key, content_type)
        form = self.storage.presign_post(image.key, content_type, limit)
        self.catalog.create(image)
        return NewUpload(image, url, form, expires_at)

    def get(self, image_id: str, owner: str | None = None) -> Image:
        """The record of an image; another owner's image is as missing as a missing one."""
        image = self.catalog.get(canonical_id(image_id))
        if image is None or (owner is not None and image.user_id != owner):
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

    def complete(self, image_id: str, owner: str | None = None) -> Image:
        """The client says the upload is done: verify now (409 if nothing arrived)."""
        return _not_rejected(self.confirm(self.get(image_id, owner), require_object=True))

    def download(
        self, image_id: str, disposition: str = "attachment", owner: str | None = None
    ) -> Download:
        """A presigned GET forcing the stored type and file name (a pending one is verified)."""
        image = _not_rejected(self.confirm(self.get(image_id, owner), require_object=True))
        if image.status is Status.PENDING:  # another worker is still verifying it
            raise NotUploaded(image.image_id)
        header = content_disposition(image, disposition)
        expires_at = self.storage.expiry()
        url = self.storage.presign_get(image.key, image.content_type, header)
        return Download(url, expires_at)

    def delete(self, image_id: str, owner: str | None = None) -> None:
        """Remove the bytes, then the record: a failure in between leaves a retryable record."""
        image = self.get(image_id, owner)
        self.storage.delete(image.key)
        if not self.catalog.delete(image.image_id):
            raise ImageNotFound(image_id)

    # -- verification: one code path for `complete`, upload events, downloads and the sweep --

    def confirm(self, image: Image, require_object: bool = False) -> Image:
        """Verify a pending image's object and move it to ready or rejected (idempotent)."""
        if image.status is not Status.PENDING:
            return image
        info = self.storage.head(image.key)
        if info is None:
            # A verifier may have just rejected it and deleted the object: its verdict stands.
            current = self.get(image.image_id)
            if current.status is not Status.PENDING or not require_object:
                return current
            raise NotUploaded(image.image_id)
        token = uuid.uuid4().hex
        now = int(time.time())
        if self.catalog.claim(image.image_id, token, now, CLAIM_LEASE_SECONDS) is None:
            return self._await_verdict(image)
        if info.size > self.limits.max_upload_bytes:
            reason = (
                f"object is {info.size} bytes, above the limit of {self.limits.max_upload_bytes}"
            )
            return self.reject(image, reason, token)
        return self._verify(image, token)

    def _verify(self, image: Image, token: str) -> Image:
        try:
            with self.storage.open(image.key) as stream:
                if stream is None:
                    return self.reject(image, "the uploaded object disappeared", token)
                verified = verify_image(
                    stream, image.content_type, self.limits.max_upload_bytes, self.limits.max_pixels
                )
        except ImageRejected as exc:
            return self.reject(image, exc.reason, token)
        except BackendUnavailable:
            self.catalog.release(image.image_id, token)
            raise
        changes = {
            "status": Status.READY.value,
            "size": verified.size,
            "width": verified.width,
            "height": verified.height,
            "sha256": verified.sha256,
        }
        ready = self.catalog.transition(
            image.image_id, Status.PENDING, changes, remove=("expires_at",), claim=token
        )
        return ready or self.get(image.image_id)

    def reject(self, image: Image, reason: str, token: str | None = None) -> Image:
        """Mark rejected with the reason, then delete the object; the record expires later."""
        expires = utcnow() + timedelta(seconds=self.limits.rejected_ttl_seconds)
        changes = {"status": Status.REJECTED.value, "reason": reason, "expires_at": expires}
        rejected = self.catalog.transition(image.image_id, Status.PENDING, changes, claim=token)
        if rejected is None:  # someone else decided first: theirs stands
            return self.get(image.image_id)
        log.info("image %s rejected: %s", image.image_id, reason)
        self.storage.delete(image.key)
        return rejected

    def _await_verdict(self, image: Image) -> Image:
        """Another verifier holds the claim: wait (bounded) for its result."""
        deadline = time.monotonic() + self.limits.confirm_wait_seconds
        current = image
        while time.monotonic() < deadline:
            time.sleep(0.1)
            current = self.get(image.image_id)
            if current.status is not Status.PENDING:
                break
        return current

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
