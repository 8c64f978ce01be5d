"""Conversion between `Image` and DynamoDB's typed attribute maps."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

from cloud_image_service.domain.models import Image, Status, format_timestamp, parse_timestamp

Item = dict[str, Any]

TTL_ATTRIBUTE = "expires_at"  # epoch seconds; DynamoDB's TTL deletes the record after it
PENDING_ATTRIBUTE = "pending_shard"  # present only while pending: a sparse index
PENDING_SHARDS = 8  # spreads pending uploads over index partitions (write throughput)


def shard_key(shard: int) -> str:
    """The sparse-index partition key of shard number `shard`."""
    return f"pending#{shard}"


def pending_shard(image_id: str) -> str:
    """The sparse-index partition of a pending record."""
    return shard_key(zlib.crc32(image_id.encode()) % PENDING_SHARDS)


def typed_value(value: object) -> dict[str, Any]:
    """DynamoDB's typed form of a str, int, datetime or list of str."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, datetime):
        return {"N": str(int(value.timestamp()))}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list | tuple):
        return {"L": [typed_value(element) for element in value]}
    raise TypeError(f"no DynamoDB type for {type(value).__name__}")


def to_item(image: Image) -> Item:
    """The record as stored; absent optional fields are left out, not written as null."""
    item: Item = {
        "image_id": {"S": image.image_id},
        "user_id": {"S": image.user_id},
        "content_type": {"S": image.content_type},
        "created_at": {"S": format_timestamp(image.created_at)},
        "status": {"S": image.status.value},
        "tags": typed_value(list(image.tags)),
    }
    optional = {
        "description": image.description,
        "filename": image.filename,
        "size": image.size,
        "width": image.width,
        "height": image.height,
        "sha256": image.sha256,
        "reason": image.reason,
        TTL_ATTRIBUTE: image.expires_at,
    }
    item |= {name: typed_value(value) for name, value in optional.items() if value is not None}
    if image.status is Status.PENDING:
        item[PENDING_ATTRIBUTE] = {"S": pending_shard(image.image_id)}
    return item


def from_item(item: Item) -> Image:
    """The `Image` of a stored record."""
    expires = _number(item, TTL_ATTRIBUTE)
    return Image(
        image_id=item["image_id"]["S"],
        user_id=item["user_id"]["S"],
        content_type=item["content_type"]["S"],
        created_at=parse_timestamp(item["created_at"]["S"]),
        status=Status(item["status"]["S"]),
        tags=tuple(tag["S"] for tag in item.get("tags", {}).get("L", [])),
        description=_text(item, "description"),
        filename=_text(item, "filename"),
        size=_number(item, "size"),
        width=_number(item, "width"),
        height=_number(item, "height"),
        sha256=_text(item, "sha256"),
        reason=_text(item, "reason"),
        expires_at=datetime.fromtimestamp(expires, UTC) if expires is not None else None,
    )


def _text(item: Item, name: str) -> str | None:
    value = item.get(name)
    return str(value["S"]) if value else None


def _number(item: Item, name: str) -> int | None:
    value = item.get(name)
    return int(value["N"]) if value else None
