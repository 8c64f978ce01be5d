"""Deleting images so that a failure at any step can be finished later.

    ready|pending|rejected ──DELETE──▶ deleting ──objects removed──▶ (record removed)
    ready ──DELETE, CIS_TRASH_DAYS > 0──▶ trashed ──restore──▶ ready
                                             └──purge after N days, or permanent──▶ deleting

A record is marked `deleting` (hidden from every read at once, and put in the sweep's
index) before any object is removed, and removed only after all of them are gone. A
DELETE that fails half-way (a store times out) leaves a `deleting` record that a
retried DELETE or the next sweep finishes, so no `ready` record ever points at a
missing object, whatever the order in which the stores fail.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from cloud_image_service.domain.errors import ImageNotFound, NotTrashed
from cloud_image_service.domain.models import VARIANTS_DUE, Image, Status, utcnow
from cloud_image_service.domain.ports import Catalog, Storage

log = logging.getLogger(__name__)


def object_keys(image: Image, variant_names: tuple[str, ...] = ()) -> list[str]:
    """Every object of an image: the served original, its upload, each variant (recorded
    or configured: one may be stored and not yet recorded)."""
    names = dict.fromkeys([*image.variants, *variant_names])
    return [image.key, image.upload_key, *(image.variant_key(name) for name in names)]


class Remover:
    """Moves records to the trash, back, and out, with their objects."""

    def __init__(
        self, storage: Storage, catalog: Catalog, variant_names: tuple[str, ...] = ()
    ) -> None:
        self.storage = storage
        self.catalog = catalog
        self.variant_names = variant_names

    def remove(self, image: Image) -> None:
        """Mark `deleting`, remove every object, then the record (each step retryable)."""
        marked = self._mark_deleting(image)
        for key in object_keys(marked, self.variant_names):
            self.storage.delete(key)
        if not self.catalog.delete(marked.image_id, Status.DELETING):
            log.info("image %s: record already removed by another request", image.image_id)

    def _mark_deleting(self, image: Image) -> Image:
        if image.status is Status.DELETING:
            return image
        changes = {"status": Status.DELETING.value, "due_at": utcnow()}
        for _ in range(3):  # the status may change under us (e.g. a verifier decides)
            marked = self.catalog.transition(image.image_id, image.status, changes)
            if marked is not None:
                return marked
            current = self.catalog.get(image.image_id)
            if current is None:
                raise ImageNotFound(image.image_id)
            if current.status is Status.DELETING:
                return current
            image = current
        raise ImageNotFound(image.image_id)

    def trash(self, image: Image, days: int) -> Image:
        """Hide a ready image for `days`, restorable until the sweep purges it."""
        now = utcnow()
        changes = {
            "status": Status.TRASHED.value,
            "trashed_at": now,
            "due_at": now + timedelta(days=days),
        }
        trashed = self.catalog.transition(image.image_id, Status.READY, changes)
        if trashed is None:
            raise ImageNotFound(image.image_id)
        return trashed

    def restore(self, image: Image) -> Image:
        """Bring a trashed image back to ready."""
        if image.status is not Status.TRASHED:
            raise NotTrashed(image.image_id)
        # Its variant job may have been replaced by the purge: due again (a no-op if done).
        changes: dict[str, object] = {
            "status": Status.READY.value,
            "due_at": utcnow(),
            "due_kind": VARIANTS_DUE,
        }
        if image.owner_sha256 is not None:  # a duplicate again
            changes["owner_sha256"] = image.owner_sha256
        restored = self.catalog.transition(
            image.image_id, Status.TRASHED, changes, remove=("trashed_at",)
        )
        if restored is None:
            raise NotTrashed(image.image_id)
        return restored
