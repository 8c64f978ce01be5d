"""Verification: the one code path that moves a pending image to ready or rejected.

Clients upload to `uploads/<id>`; no presigned URL ever writes `images/<id>`, the key
downloads serve. The verifier copies the upload there (inside S3, with only the
service's own headers), deletes the upload, and checks the copy: bytes no client can
change any more. So the recorded size and SHA-256 always describe the served object,
and a PUT replayed after `complete` changes nothing that is served.

    pending ──claim──▶ copy uploads/ → images/ ──read, decode, hash──▶ ready
                                                 └──check fails──────▶ rejected

Every transition is conditional (status, and the claim token), so a duplicate or late
signal changes nothing and two verifiers never decide on one image. A claim is a
lease: a verifier killed mid-way stops blocking others when it runs out.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from cloud_image_service.domain.budget import UNLIMITED, MemoryBudget
from cloud_image_service.domain.errors import (
    Conflict,
    ImageNotFound,
    NotUploaded,
    ServiceError,
    VerificationInProgress,
)
from cloud_image_service.domain.models import VARIANTS_DUE, Image, ObjectInfo, Status, utcnow
from cloud_image_service.domain.ports import Catalog, Storage
from cloud_image_service.domain.verify import ImageRejected, TrailingData, Verified, verify_image
from cloud_image_service.observability import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What an upload may be, how long unfinished records live, how verifiers share work."""

    max_upload_bytes: int = 25 * 1024 * 1024
    max_multipart_bytes: int = 512 * 1024 * 1024  # parts uploads (the record has upload_id)
    max_pixels: int = 50_000_000
    pending_ttl_seconds: int = 3600
    rejected_ttl_seconds: int = 7 * 24 * 3600
    trailing_data: TrailingData = "strip"
    # A verifier renews its claim as it goes; one killed mid-way blocks others this long.
    claim_lease_seconds: int = 15
    # A second caller waits this long for the first one's verdict, then gets a 409.
    confirm_wait_seconds: float = 5.0
    trash_days: int = 0
    variants: bool = True  # a ready image waits in the due index for its variants


class Verifier:
    """Confirms pending images: copy out of the upload key, verify, decide."""

    def __init__(
        self,
        storage: Storage,
        catalog: Catalog,
        limits: Limits,
        budget: MemoryBudget = UNLIMITED,
    ) -> None:
        self.storage = storage
        self.catalog = catalog
        self.limits = limits
        self.budget = budget
        self.on_ready: Callable[[], None] | None = None

    def confirm(self, image: Image, require_object: bool = False) -> Image:
        """Verify a pending image's upload and decide ready or rejected (idempotent)."""
        if image.status is not Status.PENDING:
            return image
        staged = self.storage.head(image.upload_key)
        # No upload but a copy: an earlier verifier copied it and stopped before deciding.
        copied = None if staged is not None else self.storage.head(image.key)
        if staged is None and copied is None:
            current = self._current(image.image_id)
            if current.status is not Status.PENDING or not require_object:
                return current  # a verifier may have just decided and removed the upload
            raise NotUploaded(image.image_id)
        token = uuid.uuid4().hex
        if self._claim(image.image_id, token) is None:
            return self._await_verdict(image)
        size = (staged or copied or ObjectInfo(0, None)).size
        limit = self.max_bytes(image)
        if size > limit:
            return self.reject(image, f"object is {size} bytes, above the limit of {limit}", token)
        try:
            if staged is not None:
                self._take_upload(image, staged)
                self._claim(image.image_id, token)  # renew: the copy may have taken a while
            return self._verify(image, token)
        except ServiceError:  # a store, the memory budget: let a later attempt decide
            self.catalog.release(image.image_id, token)
            raise

    def max_bytes(self, image: Image) -> int:
        """The largest object this upload may be: a multipart one may be larger."""
        if image.upload_id is not None:
            return self.limits.max_multipart_bytes
        return self.limits.max_upload_bytes

    def _claim(self, image_id: str, token: str) -> Image | None:
        """Take, or renew, the lease on verifying this image."""
        lease = self.limits.claim_lease_seconds
        return self.catalog.claim(image_id, token, int(time.time()), lease)

    def _take_upload(self, image: Image, staged: ObjectInfo) -> None:
        """Copy the upload to the served key (as it was when HEAD saw it), then drop it."""
        copied = self.storage.copy(image.upload_key, image.key, image.content_type, staged.etag)
        if not copied and self._taken_by_another(image):
            return
        if not copied:  # replaced or removed since the HEAD: the client is still uploading
            raise Conflict(f"the upload of image {image.image_id!r} changed while it was checked")
        self.storage.delete(image.upload_key)

    def _taken_by_another(self, image: Image) -> bool:
        """Between our HEAD and our claim, another verifier copied the upload out, then
        gave its claim back (a store failed): the copy is what we verify."""
        return self.storage.head(image.upload_key) is None and (
            self.storage.head(image.key) is not None
        )

    def _verify(self, image: Image, token: str) -> Image:
        try:
            with metrics.timed(metrics.VERIFICATION_SECONDS):
                verified = self._check(image)
        except ImageRejected as exc:
            return self.reject(image, exc.reason, token)
        if self._claim(image.image_id, token) is None:  # the lease ran out: another decides
            return self._await_verdict(image)
        if verified.trailing_bytes_removed:
            self.storage.truncate(image.key, verified.size, image.content_type)
        changes: dict[str, object] = {
            "status": Status.READY.value,
            "size": verified.size,
            "width": verified.width,
            "height": verified.height,
            "sha256": verified.sha256,
            "owner_sha256": f"{image.user_id}#{verified.sha256}",
        }
        if verified.trailing_bytes_removed:
            changes["trailing_bytes_removed"] = verified.trailing_bytes_removed
        if self.limits.variants:  # the job, in the same conditional write: never lost
            changes |= {"due_at": utcnow(), "due_kind": VARIANTS_DUE}
        ready = self.catalog.transition(
            image.image_id, Status.PENDING, changes, remove=("expires_at",), claim=token
        )
        if ready is None:
            return self._await_verdict(image)  # lost the claim meanwhile: theirs stands
        metrics.verified("ready")
        log.info("image %s ready", image.image_id, extra={"image_id": image.image_id})
        if self.limits.variants and self.on_ready is not None:
            self.on_ready()  # an in-process worker makes the variants now
        return ready

    def _check(self, image: Image) -> Verified:
        limits = self.limits
        with self.storage.open(image.key) as stream:
            if stream is None:
                raise ImageRejected("the uploaded object disappeared")
            return verify_image(
                stream,
                image.content_type,
                self.max_bytes(image),
                limits.max_pixels,
                self.budget,
                limits.trailing_data,
            )

    def reject(self, image: Image, reason: str, token: str | None = None) -> Image:
        """Mark rejected with the reason, then delete its objects; the record expires later."""
        expires = utcnow() + timedelta(seconds=self.limits.rejected_ttl_seconds)
        changes = {"status": Status.REJECTED.value, "reason": reason, "expires_at": expires}
        rejected = self.catalog.transition(image.image_id, Status.PENDING, changes, claim=token)
        if rejected is None:  # someone else decided first: theirs stands
            return self._current(image.image_id)
        metrics.verified("rejected", reason)
        log.info(
            "image %s rejected: %s",
            image.image_id,
            reason,
            extra={"image_id": image.image_id, "reason": reason},
        )
        self.storage.delete(image.key)
        self.storage.delete(image.upload_key)
        return rejected  # a rejected image never had variants: nothing else to delete

    def _await_verdict(self, image: Image) -> Image:
        """Another verifier holds the claim: wait (bounded) for its result, then a 409."""
        deadline = time.monotonic() + self.limits.confirm_wait_seconds
        current = self._current(image.image_id)
        while current.status is Status.PENDING and time.monotonic() < deadline:
            time.sleep(0.1)
            current = self._current(image.image_id)
        if current.status is not Status.PENDING:
            return current
        left = (current.claim_until or 0) - int(time.time())
        raise VerificationInProgress(image.image_id, max(1, min(left, 5)))

    def _current(self, image_id: str) -> Image:
        image = self.catalog.get(image_id)
        if image is None:
            raise ImageNotFound(image_id)
        return image
