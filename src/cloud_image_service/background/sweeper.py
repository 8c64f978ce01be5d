"""The sweep: no abandoned upload lives forever, no object lives without its record.

Each pass queries the sparse `due` index (never a Scan) for records whose time has
come, per kind: pending uploads past their expiry (verified if their bytes did
arrive, else rejected), deletes that failed half-way (finished), and trashed images
past CIS_TRASH_DAYS (purged). Then it lists the bucket for objects whose record does
not want them (strays) and deletes those.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from cloud_image_service.domain.errors import ServiceError
from cloud_image_service.domain.models import (
    KEY_PREFIX,
    UPLOAD_PREFIX,
    VARIANT_PREFIX,
    Status,
    utcnow,
)
from cloud_image_service.domain.multipart import MultipartUploads
from cloud_image_service.domain.service import ImageService, image_id_of
from cloud_image_service.observability import metrics

log = logging.getLogger(__name__)

# Which record statuses keep an object under each prefix; any other (or none) makes it a stray.
KEPT_BY = {
    KEY_PREFIX: frozenset({Status.PENDING, Status.READY, Status.TRASHED}),
    UPLOAD_PREFIX: frozenset({Status.PENDING}),
    VARIANT_PREFIX: frozenset({Status.READY, Status.TRASHED}),
}


@dataclass
class SweepReport:
    """What one sweep did."""

    expired_rejected: int = 0
    expired_verified: int = 0
    deletes_finished: int = 0
    trash_purged: int = 0
    multipart_aborted: int = 0
    stray_objects_deleted: int = 0


class Sweeper:
    """Finishes what requests left undone and deletes objects that have no live record."""

    def __init__(
        self,
        service: ImageService,
        object_grace_seconds: int,
        multipart: MultipartUploads | None = None,
        upload_lifetime_seconds: int = 3900,
    ) -> None:
        self.service = service
        # An object younger than this may belong to a record being written right now.
        self.object_grace_seconds = object_grace_seconds
        self.multipart = multipart
        # A multipart upload older than a URL's lifetime plus the pending TTL is abandoned.
        self.upload_lifetime_seconds = upload_lifetime_seconds

    def sweep(self) -> SweepReport:
        """One full pass; safe to run concurrently with the API and other sweeps."""
        report = SweepReport()
        self._expire_pending(report)
        self._finish(Status.DELETING, report)
        self._finish(Status.TRASHED, report)
        self._abort_abandoned(report)
        self._delete_strays(report)
        for action, count in dataclasses.asdict(report).items():
            if count:
                metrics.SWEEP_ACTIONS.labels(action).inc(count)
        log.info("sweep: %s", report, extra=dataclasses.asdict(report))
        return report

    def _expire_pending(self, report: SweepReport) -> None:
        for image in self.service.catalog.due(Status.PENDING, int(time.time())):
            # The bytes may have arrived without anyone saying so: verify rather than lose them.
            try:
                result = self.service.confirm(image)
            except ServiceError as exc:  # another verifier holds it, or a store failed
                log.info("sweep: image %s left for later: %s", image.image_id, exc.message)
                continue
            if result.status is Status.PENDING:
                self.service.reject(image, "upload expired: no object arrived in time")
                report.expired_rejected += 1
                _action("expired upload rejected", image.image_id)
            else:
                report.expired_verified += 1
                _action(f"expired upload verified: {result.status.value}", image.image_id)

    def _abort_abandoned(self, report: SweepReport) -> None:
        """Multipart uploads left half-way: their parts are billed until aborted."""
        if self.multipart is None:
            return
        started_before = utcnow() - timedelta(seconds=self.upload_lifetime_seconds)
        for upload in self.multipart.store.uploads(UPLOAD_PREFIX, started_before):
            self.multipart.store.abort(upload.key, upload.upload_id)
            report.multipart_aborted += 1
            _action("abandoned multipart upload aborted", image_id_of(upload.key), upload.key)
            image_id = image_id_of(upload.key)
            image = self.service.catalog.get(image_id) if image_id else None
            if image is not None and image.status is Status.PENDING:
                self.service.reject(image, "upload expired: its parts were never assembled")

    def _finish(self, kind: Status, report: SweepReport) -> None:
        """Finish deletes that failed half-way, or purge trash whose days are over."""
        for image in self.service.catalog.due(kind, int(time.time())):
            self.service.remover.remove(image)
            _action(
                "delete finished" if kind is Status.DELETING else "trash purged", image.image_id
            )
            if kind is Status.DELETING:
                report.deletes_finished += 1
            else:
                report.trash_purged += 1

    def _delete_strays(self, report: SweepReport) -> None:
        older_than = utcnow() - timedelta(seconds=self.object_grace_seconds)
        storage, catalog = self.service.storage, self.service.catalog
        for prefix, kept_by in KEPT_BY.items():
            for objects in storage.objects(prefix, older_than):
                for start in range(0, len(objects), 100):  # BatchGetItem takes 100 keys
                    keys = [stored.key for stored in objects[start : start + 100]]
                    ids = {key: image_id_of(key) for key in keys}
                    # A set: an image's variants share its id, and BatchGetItem refuses twins.
                    known = catalog.statuses(sorted({i for i in ids.values() if i is not None}))
                    for key, image_id in ids.items():
                        if image_id is None or known.get(image_id) not in kept_by:
                            storage.delete(key)
                            report.stray_objects_deleted += 1
                            _action("stray object deleted", image_id, key)


def _action(action: str, image_id: str | None, key: str | None = None) -> None:
    """One log line per thing the sweep did, with the image it did it to."""
    log.info("sweep: %s", action, extra={"action": action, "image_id": image_id, "key": key})
