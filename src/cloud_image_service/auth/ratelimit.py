"""Per-caller fixed-window rate limits: the rule, and an in-process limiter.

The limiter every replica shares keeps its counters in DynamoDB
(`adapters/rate_counter.py`); the in-memory one is for unit tests.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cloud_image_service.auth.caller import Caller
from cloud_image_service.auth.errors import TooManyRequests
from cloud_image_service.domain.ports import Admission

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)

Clock = Callable[[], float]


@dataclass(frozen=True)
class RateLimit:
    """At most `hits` requests per `seconds`-long window."""

    hits: int
    seconds: int

    def __str__(self) -> str:
        unit = next(name for name, size in _UNITS.items() if size == self.seconds)
        return f"{self.hits}/{unit}"

    def window(self, now: float) -> tuple[int, float]:
        """Start of the window holding `now`, and the seconds left until it ends."""
        start = int(now // self.seconds) * self.seconds
        return start, start + self.seconds - now


def parse_rate_limit(spec: str | None) -> RateLimit | None:
    """`60/minute`, `10/second`, `1000/hour`, `5000/day`; None (no limit) for "", "0" or None."""
    if spec is None or spec.strip() in ("", "0"):
        return None
    match = _SPEC.match(spec)
    if match is None:
        raise ValueError(
            f"invalid rate limit {spec!r}: expected <count>/<unit> with unit one of "
            f"{', '.join(_UNITS)} (e.g. 60/minute), or 0 to disable"
        )
    hits = int(match.group(1))
    if hits == 0:
        return None
    return RateLimit(hits, _UNITS[match.group(2).lower()])


def retry_after(seconds_left: float) -> int:
    """Whole seconds a client waits for the next window (at least 1)."""
    return max(1, math.ceil(seconds_left))


class RateLimiter(Protocol):
    """Counts one request of a caller; raises TooManyRequests past the limit."""

    def hit(self, caller: str) -> None: ...
    def admission(self, caller: str) -> Admission: ...


@dataclass(frozen=True)
class DeferredHit:
    """An admission counted on its own, before the write it guards."""

    limiter: RateLimiter
    caller: str

    def admit(self) -> None:
        """Count the hit."""
        self.limiter.hit(self.caller)


class InMemoryRateLimiter:
    """The same rule in this process only: for unit tests and single-process development."""

    def __init__(self, limit: RateLimit, clock: Clock = time.time) -> None:
        self.limit = limit
        self.clock = clock
        self._hits: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()  # sync routes run on a thread pool

    def hit(self, caller: str) -> None:
        """Count one request of `caller` in the current window, or raise TooManyRequests."""
        start, left = self.limit.window(self.clock())
        with self._lock:
            self._hits = {key: n for key, n in self._hits.items() if key[1] >= start}
            count = self._hits.get((caller, start), 0)
            if count >= self.limit.hits:
                raise TooManyRequests(str(self.limit), retry_after(left))
            self._hits[(caller, start)] = count + 1

    def admission(self, caller: str) -> Admission:
        """The hit, counted when the guarded write happens."""
        return DeferredHit(self, caller)


def caller_key(caller: Caller, client_host: str | None) -> str:
    """Whom a request counts against: the authenticated user, else the client address."""
    if caller.user_id is not None:
        return f"user:{caller.user_id}"
    return f"ip:{client_host or 'unknown'}"
