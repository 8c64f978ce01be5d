"""The sweep: no abandoned upload lives forever, no object lives without its record."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from cloud_image_service.domain.models import KEY_PREFIX, Status, utcnow
from cloud_image_service.domain.service import ImageService, image_id_of

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What one sweep did."""

    expired_rejected: int = 0
    expired_verified: int = 0
    stray_objects_deleted: int = 0


class Sweeper:
    """Finishes expired pending records and deletes objects that have no live record."""

    def __init__(self, service: ImageService, object_grace_seconds: int) -> None:
        self.service = service
        # An object younger than this may belong to a record being written right now.
        self.object_grace_seconds = object_grace_seconds

    def sweep(self) -> SweepReport:
        """One full pass; safe to run concurrently with the API and other sweeps."""
        report = SweepReport()
        self._expire_pending(report)
        self._delete_strays(report)
        log.info("sweep: %s", report)
        return report

    def _expire_pending(self, report: SweepReport) -> None:
        for image in self.service.catalog.expired_pending(int(time.time())):
            # The bytes may have arrived without anyone saying so: verify rather than lose them.
            result = self.service.confirm(image)
            if result.status is Status.PENDING:
                self.service.reject(image, "upload expired: no object arrived in time")
                report.expired_rejected += 1
            else:
                report.expired_verified += 1

    def _delete_strays(self, report: SweepReport) -> None:
        older_than = utcnow() - timedelta(seconds=self.object_grace_seconds)
        storage, catalog = self.service.storage, self.service.catalog
        for keys in storage.objects(KEY_PREFIX, older_than):
            for start in range(0, len(keys), 100):  # BatchGetItem takes 100 keys
                batch = keys[start : start + 100]
                ids = {key: image_id_of(key) for key in batch}
                known = catalog.statuses([i for i in ids.values() if i is not None])
                for key, image_id in ids.items():
                    if image_id is None or known.get(image_id) in (None, Status.REJECTED):
                        storage.delete(key)
                        report.stray_objects_deleted += 1
