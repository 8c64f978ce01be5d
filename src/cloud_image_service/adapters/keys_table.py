"""DynamoDB adapter for API keys. Every call on the keys table (except rate counters) lives here.

Table layout: partition key `key_hash` (S), the SHA-256 hex of the key; the key itself is
never stored. Global secondary index `by_key_id` on `key_id` (the hash's first 8 hex
characters, not secret), projection ALL: it is sparse, so listing and revoking never
read the rate-limit counters that share the table (see rate_counter.py). TTL attribute
`expires_at` (epoch seconds) lets DynamoDB drop expired counters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cloud_image_service.adapters.clients import conditional_write, raise_unavailable
from cloud_image_service.adapters.tables import create_table_if_absent, enable_ttl
from cloud_image_service.auth.keys import (
    KEY_ID_LENGTH,
    ApiKeyRecord,
    hash_key,
    looks_like_key,
    new_key,
)
from cloud_image_service.domain.errors import Conflict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BACKEND = "DynamoDB"
KEY_ATTRIBUTE = "key_hash"
TTL_ATTRIBUTE = "expires_at"
KEY_ID_INDEX = "by_key_id"
_CREATE_ATTEMPTS = 5


def _record(item: dict[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=item["key_id"]["S"],
        user_id=item["user_id"]["S"],
        admin=bool(item.get("admin", {}).get("BOOL", False)),
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        revoked=bool(item.get("revoked", {}).get("BOOL", False)),
    )


def _now() -> datetime:
    return datetime.now(UTC)


class ApiKeyStore:
    """API keys in their own DynamoDB table (shared with the rate-limit counters)."""

    def __init__(
        self, table: str, client: DynamoDBClient, clock: Callable[[], datetime] = _now
    ) -> None:
        self.table = table
        self.client = client
        self.clock = clock

    def create(self, user_id: str, admin: bool = False) -> tuple[str, str]:
        """Store a new key for `user_id`; returns (key_id, plaintext). Show the key once."""
        for _ in range(_CREATE_ATTEMPTS):
            plaintext = new_key()
            digest = hash_key(plaintext)
            key_id = digest[:KEY_ID_LENGTH]
            # key_id is 32 bits: collisions become likely past ~65k keys, and revoke
            # must name exactly one key, so a taken id means drawing another key.
            if self._hashes_of(key_id):
                continue
            self._put(digest, key_id, user_id, admin)
            return key_id, plaintext
        raise Conflict(f"could not draw an unused key id in {_CREATE_ATTEMPTS} attempts")

    def _put(self, digest: str, key_id: str, user_id: str, admin: bool) -> None:
        item: Any = {
            KEY_ATTRIBUTE: {"S": digest},
            "key_id": {"S": key_id},
            "user_id": {"S": user_id},
            "admin": {"BOOL": admin},
            "created_at": {"S": self.clock().isoformat(timespec="seconds")},
            "revoked": {"BOOL": False},
        }
        condition = f"attribute_not_exists({KEY_ATTRIBUTE})"
        put = partial(
            self.client.put_item, TableName=self.table, Item=item, ConditionExpression=condition
        )
        # The digest is of 256 random bits: if it already exists, it is this very item,
        # written by an attempt botocore retried after a timeout. Never overwritten.
        conditional_write(BACKEND, put)

    def lookup(self, plaintext: str) -> ApiKeyRecord | None:
        """The record of a live key; None for unknown, malformed or revoked keys."""
        if not looks_like_key(plaintext):
            return None  # not one of ours: no read is spent on it
        try:
            # Strongly consistent, so that a revocation takes effect at once.
            response = self.client.get_item(
                TableName=self.table,
                Key={KEY_ATTRIBUTE: {"S": hash_key(plaintext)}},
                ConsistentRead=True,
            )
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)
        item = response.get("Item")
        if not item or "key_id" not in item:
            return None
        record = _record(item)
        return None if record.revoked else record

    def list(self) -> list[ApiKeyRecord]:
        """Every key, revoked ones included, oldest first (an admin tool: a full Scan)."""
        records: list[ApiKeyRecord] = []
        try:
            pages = self.client.get_paginator("scan").paginate(
                TableName=self.table, IndexName=KEY_ID_INDEX
            )
            for page in pages:
                records.extend(_record(item) for item in page.get("Items", []))
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)
        return sorted(records, key=lambda record: (record.created_at, record.key_id))

    def revoke(self, key_id: str) -> bool:
        """Mark the key revoked (idempotent); False when no key has this id."""
        hashes = self._hashes_of(key_id)
        if not hashes:
            return False
        if len(hashes) > 1:  # create() avoids this; never revoke someone else's key
            raise Conflict(f"key id {key_id!r} names {len(hashes)} keys; none was revoked")
        revoked = conditional_write(
            BACKEND,
            partial(
                self.client.update_item,
                TableName=self.table,
                Key={KEY_ATTRIBUTE: {"S": hashes[0]}},
                UpdateExpression="SET revoked = :true, revoked_at = :now",
                ConditionExpression=f"attribute_exists({KEY_ATTRIBUTE})",
                ExpressionAttributeValues={
                    ":true": {"BOOL": True},
                    ":now": {"S": self.clock().isoformat(timespec="seconds")},
                },
            ),
        )
        return revoked is not None

    def _hashes_of(self, key_id: str) -> Sequence[str]:
        """Hashes of the keys with this id (a Query on the sparse index)."""
        if len(key_id) != KEY_ID_LENGTH or any(c not in "0123456789abcdef" for c in key_id):
            return []
        try:
            response = self.client.query(
                TableName=self.table,
                IndexName=KEY_ID_INDEX,
                KeyConditionExpression="key_id = :id",
                ExpressionAttributeValues={":id": {"S": key_id}},
            )
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)
        return [item[KEY_ATTRIBUTE]["S"] for item in response.get("Items", [])]

    def ping(self) -> None:
        """Raise BackendUnavailable unless the table answers."""
        try:
            self.client.describe_table(TableName=self.table)
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)

    def ensure_table(self) -> bool:
        """Create the table, its index and its TTL if absent (on-demand billing); idempotent.

        True when the table was created. Expired rate counters are dropped by TTL; a store
        without TTL only logs a warning, and the counters then linger.
        """
        attributes: list[Any] = [
            {"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"},
            {"AttributeName": "key_id", "AttributeType": "S"},
        ]
        index: Any = {
            "IndexName": KEY_ID_INDEX,
            "KeySchema": [{"AttributeName": "key_id", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
        }
        try:
            existing = create_table_if_absent(
                self.client, self.table, KEY_ATTRIBUTE, attributes, [index]
            )
            enable_ttl(self.client, self.table, TTL_ATTRIBUTE)
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)
        return existing is None
