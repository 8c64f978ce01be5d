"""The worker: confirms uploads from S3 events and runs the sweep periodically."""

from __future__ import annotations

import logging
import threading
import time

from cloud_image_service.adapters.sqs import Message, UploadQueue
from cloud_image_service.background.sweeper import Sweeper
from cloud_image_service.domain.errors import (
    BackendUnavailable,
    ServiceError,
    VerificationBusy,
    VerificationInProgress,
)
from cloud_image_service.domain.models import UPLOAD_PREFIX, Status
from cloud_image_service.domain.service import ImageService, image_id_of

log = logging.getLogger(__name__)


class Worker:
    """One consumer loop; run several processes for more throughput."""

    def __init__(
        self,
        service: ImageService,
        sweeper: Sweeper,
        queue: UploadQueue | None,
        sweep_interval: float,
        wait_seconds: int = 10,
    ) -> None:
        self.service = service
        self.sweeper = sweeper
        self.queue = queue
        self.sweep_interval = sweep_interval
        self.wait_seconds = wait_seconds
        self.stopping = threading.Event()

    def handle(self, message: Message) -> None:
        """Confirm every upload the event names; a store outage leaves the message queued."""
        for key in message.keys:
            if not key.startswith(UPLOAD_PREFIX):
                continue  # not an upload (the bucket only sends these, but be sure)
            image_id = image_id_of(key)
            image = self.service.catalog.get(image_id) if image_id else None
            if image is None or image.status is not Status.PENDING:
                # Not ours to keep: no record, or one already decided (a PUT replayed
                # after `complete` changes nothing that is served; its bytes go now).
                self.service.storage.delete(key)
                continue
            self.service.confirm(image)

    def poll_once(self) -> int:
        """Receive and handle one batch of events; returns how many were handled."""
        if self.queue is None:
            self.stopping.wait(self.wait_seconds)
            return 0
        handled = 0
        for message in self.queue.receive(self.wait_seconds):
            try:
                self.handle(message)
            except (BackendUnavailable, VerificationInProgress, VerificationBusy) as exc:
                log.warning("event kept for a retry: %s", exc.message)
                continue
            except ServiceError as exc:
                log.warning("event dropped: %s", exc.message)
            self.queue.ack(message)
            handled += 1
        return handled

    def run(self) -> None:
        """Until `stop()`: handle events, sweep every `sweep_interval` seconds."""
        next_sweep = time.monotonic()
        while not self.stopping.is_set():
            try:
                if time.monotonic() >= next_sweep:
                    self.sweeper.sweep()
                    next_sweep = time.monotonic() + self.sweep_interval
                self.poll_once()
            except ServiceError as exc:  # a store is down: wait, then go on
                log.warning("worker: %s", exc.message)
                self.stopping.wait(1.0)
            except Exception:  # a bug must not end the loop: the next event may be fine
                log.exception("worker: unexpected error; going on")
                self.stopping.wait(1.0)

    def stop(self) -> None:
        """Ask the loop to end after the current poll."""
        self.stopping.set()

    def start_thread(self) -> threading.Thread:
        """Run in a daemon thread (the embedded backend's in-process worker)."""
        thread = threading.Thread(target=self.run, name="cis-worker", daemon=True)
        thread.start()
        return thread
