"""A process-wide memory budget for decoding images.

Each decode reserves the bytes its pixels will take (width x height x bytes per pixel,
as Pillow holds them) before it starts, and waits (bounded) while other decodes hold
the budget. So N concurrent verifications of near-cap images cost at most the budget,
not N times an image.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from cloud_image_service.domain.errors import VerificationBusy

# Bytes per pixel as Pillow stores each mode (RGB and YCbCr are padded to 4 bytes).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
_MB = 1024 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter

log = logging.getLogger(__name__)


def decoded_bytes(width: int, height: int, mode: str) -> int:
    """Memory that a decoded image of this size and Pillow mode takes."""
    return width * height * _PIXEL_BYTES.get(mode, 4)


class MemoryBudget:
    """Bytes shared by every decode of the process; `reserve` blocks while they are taken."""

    def __init__(self, total_bytes: int, wait_seconds: float = 10.0) -> None:
        self.total = total_bytes
        self.wait_seconds = wait_seconds
        self.in_use = 0
        self._changed = threading.Condition()

    @classmethod
    def megabytes(cls, total_mb: int, wait_seconds: float = 10.0) -> MemoryBudget:
        """A budget of `total_mb` MiB."""
        return cls(total_mb * _MB, wait_seconds)

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        """Hold `nbytes` (at most the whole budget) for the block; VerificationBusy on timeout."""
        need = min(nbytes, self.total)  # a single image larger than the budget runs alone
        deadline = time.monotonic() + self.wait_seconds
        with self._changed:
            while self.in_use + need > self.total:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise VerificationBusy(nbytes / _MB, self.total // _MB)
                self._changed.wait(left)
            self.in_use += need
        try:
            yield
        finally:
            with self._changed:
                self.in_use -= need
                self._changed.notify_all()


UNLIMITED = MemoryBudget(1 << 62)


def return_pixel_memory_to_the_os(threshold: int = _MB) -> bool:
    """Make glibc serve allocations above `threshold` with mmap, freed back to the OS.

    Without it, glibc raises its mmap threshold after the first large free, and each
    thread's arena then keeps the ~200 MB of the last image it decoded: eight request
    threads hold 1.5 GB although the budget lets only one decode run at a time.
    False where there is no glibc (the budget still bounds concurrent decodes).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError, TypeError):
        log.info("mallopt unavailable: decoded pixels stay in the allocator's arenas")
        return False
