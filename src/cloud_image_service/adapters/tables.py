"""DynamoDB table set-up shared by the images table and the keys table (run by `init`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cloud_image_service.adapters.clients import error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

_ATTRIBUTES: list[Any] = [
    {"AttributeName": "image_id", "AttributeType": "S"},
    {"AttributeName": "user_id", "AttributeType": "S"},
    {"AttributeName": "created_at", "AttributeType": "S"},
    {"AttributeName": "due_shard", "AttributeType": "S"},
    {"AttributeName": "due_at", "AttributeType": "N"},
    {"AttributeName": "owner_sha256", "AttributeType": "S"},
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


# A user's list, newest first; the sweep's view of records that wait for it, by time.
INDEXES: list[Any] = [
    _index("by_user", "user_id", "created_at"),
    _index("due_by_time", "due_shard", "due_at"),
    # A user's ready images by their bytes (`<user_id>#<sha256>`): the duplicate check.
    _index("by_sha256", "owner_sha256", "created_at"),
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


def create_table_if_absent(
    client: DynamoDBClient, table: str, key: str, attributes: list[Any], indexes: list[Any]
) -> Any | None:
    """Create an on-demand table keyed by `key` and wait for it; None if it was created,
    else the existing table's description."""
    existing = _describe(client, table)
    if existing is not None:
        return existing
    try:
        client.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=attributes,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            GlobalSecondaryIndexes=indexes,
        )
    except ClientError as exc:
        # Another `init` won the race, or a retry of ours after a timed-out first try did.
        if error_code(exc) != "ResourceInUseException":
            raise
    _wait(client, table)
    log.info("table %s created", table)
    return None


def ensure_images_table(client: DynamoDBClient, table: str) -> None:
    """Create the images table, or add an index that an older version did not have."""
    existing = create_table_if_absent(client, table, "image_id", _ATTRIBUTES, INDEXES)
    if existing is None:
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
