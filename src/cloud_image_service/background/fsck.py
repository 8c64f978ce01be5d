"""`fsck`: compare the bucket with the catalog, both ways, and optionally repair.

Problems it finds (the `kind` of each):
- `orphan_object`: an object no record wants (no record, a rejected one, or an upload
  whose record is no longer pending);
- `missing_object`: a ready (or trashed) record whose original is gone;
- `size_mismatch`: the original's size differs from the record's;
- `checksum_mismatch` (with `deep`): its SHA-256, re-read, differs from the record's;
- `stale_pending`: a pending record past its expiry;
- `unfinished_delete`, `expired_trash`: work the sweep has not done yet;
- `missing_variant`: a variant the record lists whose object is gone;
- `orphan_variant`: a variant object its record does not list (or no record wants).

Objects and records younger than `min_age_seconds` are skipped: they may belong to an
upload or a request in flight. A repair re-reads each item just before acting on it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cloud_image_service.background.sweeper import KEPT_BY
from cloud_image_service.domain.errors import ServiceError
from cloud_image_service.domain.models import (
    KEY_PREFIX,
    UPLOAD_PREFIX,
    VARIANT_PREFIX,
    VARIANTS_DUE,
    Image,
    Status,
    StoredObject,
    utcnow,
)
from cloud_image_service.domain.removal import object_keys
from cloud_image_service.domain.service import ImageService, image_id_of

log = logging.getLogger(__name__)

KINDS = (
    "orphan_object",
    "missing_object",
    "size_mismatch",
    "checksum_mismatch",
    "stale_pending",
    "unfinished_delete",
    "expired_trash",
    "missing_variant",
    "orphan_variant",
)
_SERVED = (Status.READY, Status.TRASHED)

# Called with what is being looked at and how many of it so far.
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class Problem:
    """One inconsistency, and what a repair did about it (`none` before one)."""

    kind: str
    image_id: str | None
    key: str | None
    detail: str
    action: str = "none"


class Checker:
    """Finds and repairs inconsistencies between the bucket and the catalog."""

    def __init__(
        self,
        service: ImageService,
        min_age_seconds: int,
        deep: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self.service = service
        self.storage = service.storage
        self.catalog = service.catalog
        self.min_age = timedelta(seconds=min_age_seconds)
        self.deep = deep
        self.progress = progress or (lambda _what, _count: None)
        self._known_keys: frozenset[str] = frozenset()

    def check(self) -> list[Problem]:
        """Every problem found now; changes nothing."""
        now = utcnow()
        cutoff = now - self.min_age
        objects = self._objects(now)
        self._known_keys = frozenset(objects)
        records = self._records()
        problems = [
            problem
            for image in records.values()
            if image.created_at < cutoff
            for problem in self._check_record(image, objects.get(image.key), now, cutoff)
        ]
        problems += [
            Problem(_orphan_kind(stored.key), image_id_of(stored.key), stored.key, reason)
            for stored in objects.values()
            if stored.last_modified < cutoff
            and (reason := self._unwanted(stored.key, records)) is not None
        ]
        return problems

    def _objects(self, now: datetime) -> dict[str, StoredObject]:
        found: dict[str, StoredObject] = {}
        for prefix in (KEY_PREFIX, UPLOAD_PREFIX, VARIANT_PREFIX):
            for page in self.storage.objects(prefix, now + timedelta(days=1)):
                found |= {stored.key: stored for stored in page}
                self.progress("objects", len(found))
        return found

    def _records(self) -> dict[str, Image]:
        found: dict[str, Image] = {}
        for page in self.catalog.scan():
            found |= {image.image_id: image for image in page}
            self.progress("records", len(found))
        return found

    def _check_record(
        self, image: Image, stored: StoredObject | None, now: datetime, cutoff: datetime
    ) -> Iterable[Problem]:
        due = image.due_at or image.expires_at
        if image.status is Status.PENDING and image.expires_at and image.expires_at < now:
            yield Problem("stale_pending", image.image_id, image.upload_key, "past its expiry")
        elif image.status is Status.DELETING and (due is None or due < cutoff):
            yield Problem("unfinished_delete", image.image_id, image.key, "a DELETE stopped")
        elif image.status is Status.TRASHED and due is not None and due < now:
            yield Problem("expired_trash", image.image_id, image.key, "trash days are over")
        if image.status not in _SERVED:
            return
        for name in image.variants:
            if image.variant_key(name) not in self._known_keys:
                key = image.variant_key(name)
                yield Problem("missing_variant", image.image_id, key, "object missing")
        if stored is None:
            yield Problem("missing_object", image.image_id, image.key, "object missing")
        elif image.size is not None and stored.size != image.size:
            detail = f"object is {stored.size} bytes, the record says {image.size}"
            yield Problem("size_mismatch", image.image_id, image.key, detail)
        elif self.deep and self._sha256(image.key) not in (None, image.sha256):
            yield Problem("checksum_mismatch", image.image_id, image.key, "content changed")

    @staticmethod
    def _unwanted(key: str, records: dict[str, Image]) -> str | None:
        """Why no record wants this object, or None when one does."""
        image_id = image_id_of(key)
        image = records.get(image_id) if image_id else None
        if image is None:
            return "no record"
        if image.status is Status.DELETING:
            return None  # a deleting record's objects are its `unfinished_delete`
        prefix = next(p for p in KEPT_BY if key.startswith(p))
        if image.status not in KEPT_BY[prefix]:
            return f"its record is {image.status.value}"
        if prefix == VARIANT_PREFIX and key.rsplit("/", 1)[-1] not in image.variants:
            return "its record does not list this variant"
        return None

    def _sha256(self, key: str) -> str | None:
        digest = hashlib.sha256()
        with self.storage.open(key) as stream:
            if stream is None:
                return None
            while chunk := stream.read(1024 * 1024):
                digest.update(chunk)
        return digest.hexdigest()

    # -- repair --------------------------------------------------------------------------

    def repair(self, problems: list[Problem]) -> list[Problem]:
        """Act on each problem that still holds when re-read; returns them with `action`."""
        repaired = []
        for count, problem in enumerate(problems, 1):
            try:
                action = self._repair(problem)
            except ServiceError as exc:
                action = f"failed: {exc.message}"
            repaired.append(replace(problem, action=action))
            self.progress("repairs", count)
        return repaired

    def _repair(self, problem: Problem) -> str:
        image = self.catalog.get(problem.image_id) if problem.image_id else None
        if problem.kind in ("orphan_object", "orphan_variant"):
            assert problem.key is not None
            records = {image.image_id: image} if image else {}
            if self._unwanted(problem.key, records) is None:
                return "skipped: wanted now"
            self.storage.delete(problem.key)
            return "deleted object"
        if image is None:
            return "skipped: record gone"
        if problem.kind == "stale_pending":
            return self._sweep_pending(image)
        if problem.kind in ("unfinished_delete", "expired_trash"):
            self.service.remover.remove(image)
            return "removed"
        if problem.kind == "missing_variant":
            return self._remake_variant(image, problem)
        return self._reject_changed(image, problem)

    def _remake_variant(self, image: Image, problem: Problem) -> str:
        """Drop the lost variant from the record; its job (due now) makes it again."""
        assert problem.key is not None
        name = problem.key.rsplit("/", 1)[-1]
        if name not in image.variants or self.storage.head(problem.key) is not None:
            return "skipped: consistent now"
        variants = {k: v for k, v in image.variants.items() if k != name}
        changes: dict[str, object] = {"variants": variants}
        if image.status is Status.READY:  # a trashed image keeps its purge due; restore remakes
            changes |= {"due_at": utcnow(), "due_kind": VARIANTS_DUE}
        if self.catalog.transition(image.image_id, _SERVED, changes) is None:
            return "skipped: changed meanwhile"
        return "record fixed: variant due again"

    def _sweep_pending(self, image: Image) -> str:
        result = self.service.confirm(image)
        if result.status is Status.PENDING:
            self.service.reject(image, "upload expired: no object arrived in time")
            return "rejected"
        return f"verified: {result.status.value}"

    def _reject_changed(self, image: Image, problem: Problem) -> str:
        """A served original that is gone or changed: the record becomes rejected."""
        if image.status not in _SERVED:
            return "skipped: no longer served"
        info = self.storage.head(image.key)
        unchanged = info is not None and info.size == image.size
        if unchanged and (
            problem.kind != "checksum_mismatch" or self._sha256(image.key) == image.sha256
        ):
            return "skipped: consistent now"
        reason = "object missing" if info is None else "content changed"
        expires = utcnow() + timedelta(seconds=self.service.limits.rejected_ttl_seconds)
        changes = {"status": Status.REJECTED.value, "reason": reason, "expires_at": expires}
        if self.catalog.transition(image.image_id, image.status, changes) is None:
            return "skipped: changed meanwhile"
        for key in object_keys(image, self.service.variant_names):  # original and variants
            self.storage.delete(key)
        return f"rejected: {reason}"


def _orphan_kind(key: str) -> str:
    return "orphan_variant" if key.startswith(VARIANT_PREFIX) else "orphan_object"
