"""Large and resumable uploads: S3 multipart with presigned part URLs (Uppy's Companion protocol).

Every multipart upload is an image record like any other: `pending` from its creation,
its parts sent by the client straight to S3 at `uploads/<image_id>`, and verified by the
same code path as `complete` once S3 has assembled them. The record carries the S3
upload id, so an upload id and a key belong together only if the record says so, and
only to the caller who started it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from cloud_image_service.domain.errors import (
    BadRequest,
    ImageNotFound,
    MultipartNotFound,
    PayloadTooLarge,
)
from cloud_image_service.domain.models import UPLOAD_PREFIX, Image, Part, Status, utcnow
from cloud_image_service.domain.ports import MultipartStore
from cloud_image_service.domain.service import ImageService
from cloud_image_service.observability import metrics

MIN_PART_BYTES = 5 * 1024 * 1024  # S3: every part but the last
MAX_PARTS = 10_000  # S3: part numbers 1-10,000


@dataclass(frozen=True)
class Started:
    """A new multipart upload: its record, S3 upload id, and the part size to use."""

    image: Image
    upload_id: str
    part_bytes: int


def _etag(value: str) -> str:
    """ETags compared without their quotes (browsers and S3 differ)."""
    return value.strip().strip('"')


class MultipartUploads:
    """Starts, signs, lists, completes and aborts multipart uploads of images."""

    def __init__(
        self, service: ImageService, store: MultipartStore, part_bytes: int = 8 * 1024 * 1024
    ) -> None:
        self.service = service
        self.store = store
        self.part_bytes = part_bytes

    @property
    def max_bytes(self) -> int:
        """Largest multipart upload (CIS_MAX_MULTIPART_BYTES)."""
        return self.service.limits.max_multipart_bytes

    def start(
        self,
        owner: str,
        content_type: str,
        filename: str | None,
        tags: tuple[str, ...] = (),
        description: str | None = None,
        size: int | None = None,
    ) -> Started:
        """A pending record and an S3 multipart upload for it."""
        if size is not None and size > self.max_bytes:
            raise PayloadTooLarge(
                f"size {size} is above the multipart upload limit of {self.max_bytes} bytes"
            )
        limits = self.service.limits
        image_id = str(uuid.uuid4())
        upload_id = self.store.create(f"{UPLOAD_PREFIX}{image_id}", content_type)
        image = Image(
            image_id=image_id,
            user_id=owner,
            content_type=content_type,
            created_at=utcnow(),
            tags=tags,
            description=description,
            filename=filename,
            upload_id=upload_id,
            expires_at=self.service.storage.expiry()
            + timedelta(seconds=limits.pending_ttl_seconds),
        )
        try:
            self.service.catalog.create(image)
        except BaseException:
            self.store.abort(image.upload_key, upload_id)  # no S3 upload without its record
            raise
        metrics.UPLOADS_CREATED.labels("multipart").inc()
        return Started(image, upload_id, self.part_bytes)

    def find(self, upload_id: str, key: str, owner: str | None) -> Image:
        """The pending upload these belong to; anything else is the same 404."""
        image = self._record(upload_id, key, owner)
        if image.status is not Status.PENDING:
            raise MultipartNotFound(upload_id)
        return image

    def _record(self, upload_id: str, key: str, owner: str | None) -> Image:
        """The caller's record of this upload id and key, whatever its status."""
        image_id = key.removeprefix(UPLOAD_PREFIX) if key.startswith(UPLOAD_PREFIX) else ""
        try:
            image = self.service.get(image_id, owner) if image_id else None
        except ImageNotFound:
            image = None
        if image is None or image.upload_id != upload_id:
            raise MultipartNotFound(upload_id)
        if image.upload_key != key:  # the id's canonical form must be the key's
            raise MultipartNotFound(upload_id)
        return image

    def sign(
        self, upload_id: str, key: str, numbers: Iterable[int], owner: str | None
    ) -> dict[int, str]:
        """Presigned PUT URLs of the parts, by part number."""
        image = self.find(upload_id, key, owner)
        urls = {}
        for number in numbers:
            if not 1 <= number <= MAX_PARTS:
                raise BadRequest(f"part number {number}: parts are numbered 1 to {MAX_PARTS}")
            urls[number] = self.store.presign_part(image.upload_key, upload_id, number)
        return urls

    def parts(self, upload_id: str, key: str, owner: str | None) -> list[Part]:
        """Every part S3 holds: a client resumes by sending only the others."""
        image = self.find(upload_id, key, owner)
        return self.store.parts(image.upload_key, upload_id)

    def complete(
        self, upload_id: str, key: str, sent: list[tuple[int, str]], owner: str | None
    ) -> Image:
        """Check the parts, have S3 assemble them, then verify as `complete` does.

        Idempotent, as a client retrying after a lost answer or a 409 needs: once S3 has
        assembled the parts, a retry goes straight to the verdict."""
        image = self._record(upload_id, key, owner)
        if image.status is not Status.PENDING:
            return self.service.complete(image.image_id, owner)  # the verdict, again
        try:
            listed = self.store.parts(image.upload_key, upload_id)
        except MultipartNotFound:
            if self.service.storage.head(image.upload_key) is None:
                raise
            return self.service.complete(image.image_id, owner)  # assembled already
        held = {part.number: part for part in listed}
        chosen = self._check_parts(sent, held)
        total = sum(held[number].size for number, _ in chosen)
        if total > self.max_bytes:
            self.abort(upload_id, key, owner, reason="too large")
            raise PayloadTooLarge(
                f"the parts add up to {total} bytes, above the multipart upload limit of "
                f"{self.max_bytes}; the upload was aborted"
            )
        self.store.complete(image.upload_key, upload_id, chosen)
        return self.service.complete(image.image_id, owner)

    @staticmethod
    def _check_parts(sent: list[tuple[int, str]], held: dict[int, Part]) -> list[tuple[int, str]]:
        """The parts to assemble, in order; a 400 naming the first rule one breaks."""
        if not sent:
            raise BadRequest("parts: at least one part is needed")
        chosen = sorted(sent)
        numbers = [number for number, _ in chosen]
        if len(set(numbers)) != len(numbers):
            raise BadRequest("parts: a part number is listed twice")
        for index, (number, etag) in enumerate(chosen):
            part = held.get(number)
            if part is None or _etag(part.etag) != _etag(etag):
                raise BadRequest(f"part {number}: S3 holds no part {number} with this ETag")
            if index < len(chosen) - 1 and part.size < MIN_PART_BYTES:
                raise BadRequest(
                    f"part {number} is {part.size} bytes: every part but the last must be at "
                    f"least {MIN_PART_BYTES} bytes (5 MiB, S3's rule)"
                )
        return [(number, held[number].etag) for number, _ in chosen]

    def abort(self, upload_id: str, key: str, owner: str | None, reason: str = "aborted") -> None:
        """Drop the parts at S3 and reject the record with the reason."""
        image = self.find(upload_id, key, owner)
        self.store.abort(image.upload_key, upload_id)
        self.service.reject(image, reason)
