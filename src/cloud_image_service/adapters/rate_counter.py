"""The rate limit's counters in DynamoDB, shared by every replica.

One counter item per limit, caller and window, `rate#<limit>#<caller>#<window start>`, in
the API-key table (see keys_table.py). A conditional `ADD` increments it only while it is below the
limit, so replicas never over-admit and a refused request does not count.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING

from cloud_image_service.adapters.clients import conditional_write
from cloud_image_service.adapters.keys_table import KEY_ATTRIBUTE, TTL_ATTRIBUTE
from cloud_image_service.auth.errors import TooManyRequests
from cloud_image_service.auth.ratelimit import Clock, RateLimit, parse_rate_limit, retry_after

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

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
        start, left = self.limit.window(self.clock())
        expires = start + self.limit.seconds + _TTL_GRACE_SECONDS
        counted = conditional_write(
            BACKEND,
            partial(
                self.client.update_item,
                TableName=self.table,
                Key={self.key_attribute: {"S": f"rate#{self.name}#{caller}#{start}"}},
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


def build_rate_limiter(
    spec: str | None, table: str, client: DynamoDBClient, name: str = "uploads"
) -> DynamoRateLimiter | None:
    """The shared limiter for a rate-limit setting; None when it disables limiting."""
    limit = parse_rate_limit(spec)
    return None if limit is None else DynamoRateLimiter(table, client, limit, name=name)
