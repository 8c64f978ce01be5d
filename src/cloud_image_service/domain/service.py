"""The image service: what the API, the worker and the sweep call; independent of HTTP and boto3.

    pending ──verify ok──▶ ready ──DELETE──▶ deleting ──▶ (gone)
       │                     └──DELETE with trash──▶ trashed ──restore──▶ ready
       └──verify fails / expired──▶ rejected (reason kept, objects deleted)

Verification lives in `verification.py`, deletion and the trash in `removal.py`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from cloud_image_service.domain.budget import UNLIMITED, MemoryBudget
from cloud_image_service.domain.errors import (
    BackendUnavailable,
    ImageNotFound,
    NotUploaded,
    PayloadTooLarge,
    ValidationFailed,
    VariantNotFound,
    VariantNotReady,
    VerificationInProgress,
)
from cloud_image_service.domain.formats import FORMATS
from cloud_image_service.domain.models import (
    KEY_PREFIX,
    UPLOAD_PREFIX,
    VARIANT_PREFIX,
    Image,
    ListQuery,
    Status,
    utcnow,
)
from cloud_image_service.domain.pagination import CursorCodec
from cloud_image_service.domain.ports import Admission, Catalog, Storage
from cloud_image_service.domain.removal import Remover
from cloud_image_service.domain.variants import VariantMaker
from cloud_image_service.domain.verification import Limits, Verifier
from cloud_image_service.observability import metrics

__all__ = ["Download", "ImageService", "Limits", "NewUpload", "canonical_id", "image_id_of"]

log = logging.getLogger(__name__)

# What GET, download and complete see; trashed and deleting records are as missing.
VISIBLE = (Status.PENDING, Status.READY, Status.REJECTED)


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
    """The image id of an object key made by `Image.key` or `Image.upload_key`, else None."""
    for prefix in (KEY_PREFIX, UPLOAD_PREFIX, VARIANT_PREFIX):
        if key.startswith(prefix):
            rest = key.removeprefix(prefix)
            if prefix == VARIANT_PREFIX:  # variants/<image_id>/<name>
                rest = rest.split("/", 1)[0]
            try:
                return str(uuid.UUID(rest))
            except ValueError:
                return None
    return None


def _extension(content_type: str) -> str:
    known = FORMATS.get(content_type)
    return known.extension if known else ""


def content_disposition(
    image: Image,
    disposition: str = "attachment",
    variant: str | None = None,
    variant_type: str | None = None,
) -> str:
    """RFC 6266 header: an ASCII fallback name plus the exact UTF-8 name.

    A variant is named after the original: `cat.png` gives `cat-thumb.webp`.
    """
    name = image.filename or f"{image.image_id}{_extension(image.content_type)}"
    if variant is not None:
        stem = name.rsplit(".", 1)[0] if "." in name else name
        name = f"{stem}-{variant}{_extension(variant_type or '')}"
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
        self,
        storage: Storage,
        catalog: Catalog,
        cursors: CursorCodec,
        limits: Limits | None = None,
        budget: MemoryBudget = UNLIMITED,
        variants: VariantMaker | None = None,
    ) -> None:
        self.storage = storage
        self.catalog = catalog
        self.cursors = cursors
        self.variants = variants
        self.variant_names = variants.names if variants is not None else ()
        self.limits = limits or Limits(variants=bool(self.variant_names))
        self.verifier = Verifier(storage, catalog, self.limits, budget)
        self.remover = Remover(storage, catalog, self.variant_names)

    def create_upload(
        self,
        user_id: str,
        content_type: str,
        tags: tuple[str, ...] = (),
        description: str | None = None,
        filename: str | None = None,
        size: int | None = None,
        admission: Admission | None = None,
    ) -> NewUpload:
        """Record a pending image and presign the PUT and the POST of its bytes.

        `admission`: the caller's rate-limit hit, counted with the record's write.
        """
        limit = self.limits.max_upload_bytes
        if size is not None and size > limit:
            raise PayloadTooLarge(
                f"size {size} is above the upload limit of {limit} bytes; "
                "larger images upload in parts (multipart)"
            )
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
        url = self.storage.presign_put(image.upload_key, content_type)
        form = self.storage.presign_post(image.upload_key, content_type, limit)
        self.catalog.create(image, admission)
        metrics.UPLOADS_CREATED.labels("single").inc()
        return NewUpload(image, url, form, expires_at)

    def get(
        self, image_id: str, owner: str | None = None, visible: tuple[Status, ...] = VISIBLE
    ) -> Image:
        """The record of an image; another owner's image is as missing as a missing one."""
        image = self.catalog.get(canonical_id(image_id))
        if image is None or (owner is not None and image.user_id != owner):
            raise ImageNotFound(image_id)
        if image.status not in visible:
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
        image = _not_rejected(self.confirm(self.get(image_id, owner), require_object=True))
        if image.status is not Status.READY:  # never a 200 that still says "pending"
            raise VerificationInProgress(image.image_id, 1)
        return image

    def download(
        self,
        image_id: str,
        disposition: str = "attachment",
        owner: str | None = None,
        before_verify: Callable[[], None] | None = None,
        variant: str | None = None,
    ) -> Download:
        """A presigned GET of the original or a variant, forcing its type and file name.

        A pending image is verified first; a variant not made yet is a 409.
        """
        if variant is not None and variant not in self.variant_names:
            raise VariantNotFound(variant, self.variant_names)
        image = self.get(image_id, owner)
        if image.status is Status.PENDING and before_verify is not None:
            before_verify()  # verifying costs a decode: it counts against its own limit
        image = _not_rejected(self.confirm(image, require_object=True))
        if image.status is not Status.READY:
            raise NotUploaded(image.image_id)
        expires_at = self.storage.expiry()
        if variant is None:
            header = content_disposition(image, disposition)
            url = self.storage.presign_get(image.key, image.content_type, header)
            return Download(url, expires_at)
        made = image.variants.get(variant)
        if made is None:
            raise VariantNotReady(image.image_id, variant)
        header = content_disposition(image, disposition, variant, made.content_type)
        url = self.storage.presign_get(image.variant_key(variant), made.content_type, header)
        return Download(url, expires_at)

    def delete(self, image_id: str, owner: str | None = None, permanent: bool = False) -> None:
        """Trash a ready image (CIS_TRASH_DAYS > 0), else remove it and its objects."""
        image = self.get(image_id, owner, visible=(*VISIBLE, Status.DELETING, Status.TRASHED))
        if image.status is Status.TRASHED and not permanent:
            raise ImageNotFound(image_id)  # hidden like a missing image; permanent=true removes
        if self.limits.trash_days > 0 and not permanent and image.status is Status.READY:
            self.remover.trash(image, self.limits.trash_days)
            return
        self.remover.remove(image)  # a `deleting` record left by a failed DELETE is finished

    def restore(self, image_id: str, owner: str | None = None) -> Image:
        """Bring a trashed image back (409 if it is not in the trash)."""
        image = self.get(image_id, owner, visible=(*VISIBLE, Status.TRASHED))
        return self.remover.restore(image)

    def confirm(self, image: Image, require_object: bool = False) -> Image:
        """Verify a pending image and decide ready or rejected (see verification.py)."""
        return self.verifier.confirm(image, require_object)

    def reject(self, image: Image, reason: str) -> Image:
        """Mark a pending image rejected with the reason and delete its objects."""
        return self.verifier.reject(image, reason)

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
