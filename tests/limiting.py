"""Shared checks of the two rate limiters (in memory and DynamoDB)."""

from __future__ import annotations

import pytest

from cloud_image_service.auth.errors import TooManyRequests
from cloud_image_service.auth.ratelimit import RateLimiter


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def assert_three_per_second(limiter: RateLimiter, clock: Clock) -> TooManyRequests:
    """3 hits pass, the 4th is a 429 with Retry-After, others and the next window pass."""
    for _ in range(3):
        limiter.hit("user:alice")
    with pytest.raises(TooManyRequests) as caught:
        limiter.hit("user:alice")
    assert caught.value.status_code == 429
    assert caught.value.headers() == {"Retry-After": "1"}
    limiter.hit("user:bob")  # another caller has its own budget
    clock.now = float(int(clock.now) + 1)  # the next window
    limiter.hit("user:alice")
    return caught.value
