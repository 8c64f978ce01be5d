"""A bulkhead for routes that may wait on S3.

uvicorn runs sync routes on AnyIO's pool of 40 threads. If S3 stalls, every request
that calls it holds a thread until its timeout; enough of them and the routes that
need only DynamoDB (get, list, presign) find no thread left. Such routes take a slot
here first, on the event loop (waiting costs no thread), so at most
CIS_S3_MAX_CONCURRENCY threads can ever wait on S3 at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from fastapi import Request

from cloud_image_service.domain.errors import BackendUnavailable


class StoreGate:
    """At most `slots` requests at once; a request waits at most `wait_seconds` for one."""

    def __init__(self, store: str, slots: int, wait_seconds: float) -> None:
        self.store = store
        self.slots = slots
        self.wait_seconds = wait_seconds
        self._semaphore = anyio.Semaphore(slots)

    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the request; 503 when none frees up in time."""
        try:
            with anyio.fail_after(self.wait_seconds):
                await self._semaphore.acquire()
        except TimeoutError:
            raise BackendUnavailable(
                self.store, f"{self.slots} requests are already waiting on it (slow or stalled)"
            ) from None
        try:
            yield
        finally:
            self._semaphore.release()


async def s3_slot(request: Request) -> AsyncIterator[None]:
    """Dependency: a slot of the app's S3 gate for the whole request."""
    gate: StoreGate = request.app.state.s3_gate
    async for _ in gate.slot():
        yield
