"""The worker: confirms uploads from S3 events, makes variants, runs the sweep.

Three loops, each on its own thread, so that a 10-second long poll of SQS never delays
a variant and a long sweep never delays an upload's verification:
- events: S3 `ObjectCreated` for `uploads/` through SQS (when events are on);
- jobs: records due in the index under `variants`, polled every second, or at once when
  this process made an image ready (`nudge`);
- sweep: every CIS_SWEEP_INTERVAL_SECONDS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

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
from cloud_image_service.domain.variants import VariantMaker
from cloud_image_service.observability import metrics

log = logging.getLogger(__name__)

_RETRYABLE = (BackendUnavailable, VerificationInProgress, VerificationBusy)


class Worker:
    """The worker's loops; run several processes for more throughput."""

    def __init__(
        self,
        service: ImageService,
        sweeper: Sweeper,
        queue: UploadQueue | None,
        sweep_interval: float,
        wait_seconds: int = 10,
        variants: VariantMaker | None = None,
        job_interval: float = 1.0,
    ) -> None:
        self.service = service
        self.sweeper = sweeper
        self.queue = queue
        self.sweep_interval = sweep_interval
        self.wait_seconds = wait_seconds
        self.variants = variants
        self.job_interval = job_interval
        self.stopping = threading.Event()
        self._jobs_due = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- events --------------------------------------------------------------------------

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
                log.info("event: upload dropped", extra={"image_id": image_id, "key": key})
                continue
            result = self.service.confirm(image)
            log.info(
                "event: upload %s", result.status.value, extra={"image_id": image_id, "key": key}
            )

    def poll_once(self) -> int:
        """Receive and handle one batch of events; returns how many were handled."""
        if self.queue is None:
            self.stopping.wait(self.wait_seconds)
            return 0
        handled = 0
        batch = self.queue.receive(self.wait_seconds)
        sent = [m.sent_at for m in batch if m.sent_at is not None]
        if sent:
            metrics.OLDEST_EVENT_AGE.set(max(0.0, time.time() - min(sent)))
        for message in batch:
            try:
                self.handle(message)
            except _RETRYABLE as exc:
                log.warning("event kept for a retry: %s", exc.message)
                continue
            except ServiceError as exc:
                log.warning("event dropped: %s", exc.message)
            self.queue.ack(message)
            handled += 1
        return handled

    # -- jobs ----------------------------------------------------------------------------

    def nudge(self) -> None:
        """An image just turned ready in this process: look for due jobs now."""
        self._jobs_due.set()

    def run_jobs_once(self) -> int:
        """Make the variants that are due; returns how many images were handled."""
        return self.variants.run_due() if self.variants is not None else 0

    # -- loops ---------------------------------------------------------------------------

    def _loop(self, name: str, step: Callable[[], None]) -> None:
        while not self.stopping.is_set():
            try:
                step()
            except ServiceError as exc:  # a store is down: wait, then go on
                log.warning("worker %s: %s", name, exc.message)
                self.stopping.wait(1.0)
            except Exception:  # a bug must not end the loop: the next item may be fine
                log.exception("worker %s: unexpected error; going on", name)
                self.stopping.wait(1.0)

    def _events_step(self) -> None:
        self.poll_once()

    def _jobs_step(self) -> None:
        self._jobs_due.wait(self.job_interval)
        self._jobs_due.clear()
        while not self.stopping.is_set() and self.run_jobs_once():
            pass  # a full batch: there may be more

    def _sweep_step(self) -> None:
        self.sweeper.sweep()
        self.stopping.wait(self.sweep_interval)

    def start(self) -> None:
        """Start the loops on daemon threads (the API process's in-process worker, too)."""
        loops: dict[str, Callable[[], None]] = {
            "events": self._events_step,
            "jobs": self._jobs_step,
            "sweep": self._sweep_step,
        }
        for name, step in loops.items():
            thread = threading.Thread(
                target=self._loop, args=(name, step), name=f"cis-worker-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def run(self) -> None:
        """Run until `stop()` (the `worker` command)."""
        self.start()
        while not self.stopping.wait(0.5):
            pass
        self.join(timeout=self.wait_seconds + 5)

    def stop(self) -> None:
        """Ask the loops to end after their current step."""
        self.stopping.set()
        self._jobs_due.set()

    def join(self, timeout: float) -> None:
        """Wait for the loops to end (an event handled, a poll ended)."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
