"""The rate limit's counters in DynamoDB, shared by every replica.

One counter item per limit, caller and window, `rate#<limit>#<caller>#<window start>`, in
the API-key table (see keys_table.py). A conditional `ADD` increments it only while it is below the
limit, so replicas never over-admit and a refused request does not count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from cloud_image_service.adapters.clients import conditional_write
from cloud_image_service.adapters.keys_table import KEY_ATTRIBUTE, TTL_ATTRIBUTE
from cloud_image_service.auth.errors import TooManyRequests
from cloud_image_service.auth.ratelimit import (
    Clock,
    DeferredHit,
    RateLimit,
    parse_rate_limit,
    retry_after,
)
from cloud_image_service.domain.ports import Admission

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import UpdateTypeDef

BACKEND = "DynamoDB"
# Counters outlive their window a little: DynamoDB's TTL is lazy anyway.
_TTL_GRACE_SECONDS = 60


class DynamoRateLimiter:
    """The limit, enforced across replicas by a conditional counter in DynamoDB."""

    def __init__(
        self,
        table: str,
        client: DynamoDBClient,
        limit: RateLimit,
        clock: Clock = time.time,
        key_attribute: str = KEY_ATTRIBUTE,
        name: str = "uploads",
    ) -> None:
        self.table = table
        self.client = client
        self.limit = limit
        self.clock = clock
        self.key_attribute = key_attribute
        self.name = name  # each limit counts in its own items

    def hit(self, caller: str) -> None:
        """Count one request of `caller` in the current window, or raise TooManyRequests."""
        update, left = self.update(caller)
        counted = conditional_write(BACKEND, partial(self.client.update_item, **update))
        if counted is None:
            raise self.refusal(left)

    def update(self, caller: str) -> tuple[UpdateTypeDef, float]:
        """The conditional counter update of one hit now, and the seconds left in its window."""
        start, left = self.limit.window(self.clock())
        expires = start + self.limit.seconds + _TTL_GRACE_SECONDS
        update: UpdateTypeDef = {
            "TableName": self.table,
            "Key": {self.key_attribute: {"S": f"rate#{self.name}#{caller}#{start}"}},
            "UpdateExpression": "ADD hits :one SET #ttl = :expires",
            "ConditionExpression": "attribute_not_exists(hits) OR hits < :limit",
            "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
            "ExpressionAttributeValues": {
                ":one": {"N": "1"},
                ":limit": {"N": str(self.limit.hits)},
                ":expires": {"N": str(expires)},
            },
        }
        return update, left

    def refusal(self, seconds_left: float) -> TooManyRequests:
        """The 429 of a refused hit."""
        return TooManyRequests(str(self.limit), retry_after(seconds_left))

    def admission(self, caller: str) -> Admission:
        """The hit, for a DynamoDB write to count in its own transaction."""
        return CounterHit(self, caller)


@dataclass(frozen=True)
class CounterHit(DeferredHit):
    """A hit on a DynamoDB counter: a transaction can carry it beside its own write."""

    limiter: DynamoRateLimiter


def build_rate_limiter(
    spec: str | None, table: str, client: DynamoDBClient, name: str = "uploads"
) -> DynamoRateLimiter | None:
    """The shared limiter for a rate-limit setting; None when it disables limiting."""
    limit = parse_rate_limit(spec)
    return None if limit is None else DynamoRateLimiter(table, client, limit, name=name)
