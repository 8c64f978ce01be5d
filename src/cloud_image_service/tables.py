"""DynamoDB table definitions, created by `init` (and by the embedded backend)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cloud_image_service.aws import error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

_ATTRIBUTES: list[Any] = [
    {"AttributeName": "image_id", "AttributeType": "S"},
    {"AttributeName": "user_id", "AttributeType": "S"},
    {"AttributeName": "created_at", "AttributeType": "S"},
    {"AttributeName": "pending_shard", "AttributeType": "S"},
    {"AttributeName": "expires_at", "AttributeType": "N"},
]


def _index(name: str, partition: str, sort: str) -> Any:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": partition, "KeyType": "HASH"},
            {"AttributeName": sort, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


# A user's list, newest first; and the sweep's view of pending records by expiry.
INDEXES: list[Any] = [
    _index("by_user", "user_id", "created_at"),
    _index("pending_by_expiry", "pending_shard", "expires_at"),
]


def _describe(client: DynamoDBClient, table: str) -> Any | None:
    try:
        return client.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def _wait(client: DynamoDBClient, table: str) -> None:
    client.get_waiter("table_exists").wait(
        TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )


def ensure_images_table(client: DynamoDBClient, table: str) -> None:
    """Create the images table, or add an index that an older version did not have."""
    existing = _describe(client, table)
    if existing is None:
        client.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=_ATTRIBUTES,
            KeySchema=[{"AttributeName": "image_id", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=INDEXES,
        )
        _wait(client, table)
        log.info("table %s created", table)
        return
    have = {index["IndexName"] for index in existing.get("GlobalSecondaryIndexes", [])}
    for index in INDEXES:
        if index["IndexName"] not in have:
            client.update_table(
                TableName=table,
                AttributeDefinitions=_ATTRIBUTES,
                GlobalSecondaryIndexUpdates=[{"Create": index}],
            )
            log.info("table %s: index %s added", table, index["IndexName"])


def enable_ttl(client: DynamoDBClient, table: str, attribute: str) -> list[str]:
    """Turn on DynamoDB TTL for `attribute`; a store without TTL is a warning."""
    try:
        current = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return []
        client.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
        )
    except ClientError as exc:
        message = f"could not enable TTL on {table}: {error_code(exc)}"
        log.warning(message)
        return [message]
    return []
