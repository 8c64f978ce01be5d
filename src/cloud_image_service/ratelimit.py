"""Per-caller fixed-window rate limits, shared by every replica through DynamoDB.

One counter item per caller and window, `rate#<caller>#<window start>`, in the API-key
table (see apikeys.py). A conditional `ADD` increments it only while it is below the
limit, so replicas never over-admit and a refused request does not count.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import Depends, Request

from cloud_image_service.apikeys import KEY_ATTRIBUTE, TTL_ATTRIBUTE
from cloud_image_service.auth import caller_dependency
from cloud_image_service.auth_errors import TooManyRequests
from cloud_image_service.aws import conditional_write
from cloud_image_service.caller import Caller

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BACKEND = "DynamoDB"
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)
# Counters outlive their window a little: DynamoDB's TTL is lazy anyway.
_TTL_GRACE_SECONDS = 60

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


class DynamoRateLimiter:
    """The limit, enforced across replicas by a conditional counter in DynamoDB."""

    def __init__(
        self,
        table: str,
        client: DynamoDBClient,
        limit: RateLimit,
        clock: Clock = time.time,
        key_attribute: str = KEY_ATTRIBUTE,
    ) -> None:
        self.table = table
        self.client = client
        self.limit = limit
        self.clock = clock
        self.key_attribute = key_attribute

    def hit(self, caller: str) -> None:
        """Count one request of `caller` in the current window, or raise TooManyRequests."""
        start, left = self.limit.window(self.clock())
        expires = start + self.limit.seconds + _TTL_GRACE_SECONDS
        counted = conditional_write(
            BACKEND,
            partial(
                self.client.update_item,
                TableName=self.table,
                Key={self.key_attribute: {"S": f"rate#{caller}#{start}"}},
                UpdateExpression="ADD hits :one SET #ttl = :expires",
                ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(self.limit.hits)},
                    ":expires": {"N": str(expires)},
                },
            ),
        )
        if counted is None:
            raise TooManyRequests(str(self.limit), retry_after(left))


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


def build_rate_limiter(
    spec: str | None, table: str, client: DynamoDBClient
) -> DynamoRateLimiter | None:
    """The shared limiter for a `CIS_RATE_LIMIT` value; None when it disables limiting."""
    limit = parse_rate_limit(spec)
    return None if limit is None else DynamoRateLimiter(table, client, limit)


def caller_key(caller: Caller, client_host: str | None) -> str:
    """Whom a request counts against: the authenticated user, else the client address."""
    if caller.user_id is not None:
        return f"user:{caller.user_id}"
    return f"ip:{client_host or 'unknown'}"


def rate_limited_caller(
    request: Request, caller: Annotated[Caller, Depends(caller_dependency)]
) -> Caller:
    """Dependency: the caller, after counting one hit on `app.state.rate_limiter` (None: off)."""
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
        limiter.hit(caller_key(caller, request.client.host if request.client else None))
    return caller
