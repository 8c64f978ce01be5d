"""Conversion between `Image` and DynamoDB's typed attribute maps."""

from __future__ import annotations

import dataclasses
import zlib
from datetime import UTC, datetime
from typing import Any

from cloud_image_service.domain.models import (
    Image,
    Status,
    Variant,
    format_timestamp,
    parse_timestamp,
)

Item = dict[str, Any]

TTL_ATTRIBUTE = "expires_at"  # epoch seconds; DynamoDB's TTL deletes the record after it
# The sparse index of work the sweep must do at a time: present only on records that
# wait for something (pending: expiry; deleting: unfinished delete; trashed: purge).
DUE_SHARD = "due_shard"
DUE_AT = "due_at"  # epoch seconds
DUE_SHARDS = 8  # spreads each kind over index partitions (write throughput)


def shard_key(kind: str, shard: int) -> str:
    """The sparse-index partition key of shard number `shard` of a kind of work."""
    return f"{kind}#{shard}"


def due_shard(kind: str, image_id: str) -> str:
    """The sweep-index partition of a record waiting for a kind of work."""
    return shard_key(kind, zlib.crc32(image_id.encode()) % DUE_SHARDS)


def typed_value(value: object) -> dict[str, Any]:
    """DynamoDB's typed form of a str, int, datetime, list, dict or Variant."""
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
    if isinstance(value, Variant):
        return typed_value(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {"M": {str(key): typed_value(element) for key, element in value.items()}}
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
    optional: dict[str, object] = {
        "description": image.description,
        "filename": image.filename,
        "size": image.size,
        "width": image.width,
        "height": image.height,
        "sha256": image.sha256,
        "reason": image.reason,
        "trailing_bytes_removed": image.trailing_bytes_removed,
        "trashed_at": image.trashed_at,
        "upload_id": image.upload_id,
        TTL_ATTRIBUTE: image.expires_at,
    }
    due = image.due_at or (image.expires_at if image.status is Status.PENDING else None)
    if due is not None:
        kind = image.due_kind or image.status.value
        optional |= {DUE_SHARD: due_shard(kind, image.image_id), DUE_AT: due}
    if image.status is Status.READY:
        optional["owner_sha256"] = image.owner_sha256
    if image.variants:
        optional["variants"] = image.variants
    optional["placeholder"] = image.placeholder
    item |= {name: typed_value(value) for name, value in optional.items() if value is not None}
    return item


def _variants(item: Item) -> dict[str, Variant]:
    found = item.get("variants", {}).get("M", {})
    return {
        name: Variant(
            width=int(value["M"]["width"]["N"]),
            height=int(value["M"]["height"]["N"]),
            size=int(value["M"]["size"]["N"]),
            content_type=value["M"]["content_type"]["S"],
        )
        for name, value in found.items()
    }


def _due_kind(item: Item) -> str | None:
    shard = _text(item, DUE_SHARD)
    return shard.rsplit("#", 1)[0] if shard else None


def from_item(item: Item) -> Image:
    """The `Image` of a stored record."""
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
        expires_at=_time(item, TTL_ATTRIBUTE),
        trailing_bytes_removed=_number(item, "trailing_bytes_removed"),
        trashed_at=_time(item, "trashed_at"),
        claim_until=_number(item, "claim_until"),
        due_at=_time(item, DUE_AT),
        due_kind=_due_kind(item),
        variants=_variants(item),
        placeholder=_text(item, "placeholder"),
        variant_attempts=_number(item, "variant_attempts") or 0,
        upload_id=_text(item, "upload_id"),
    )


def _text(item: Item, name: str) -> str | None:
    value = item.get(name)
    return str(value["S"]) if value else None


def _number(item: Item, name: str) -> int | None:
    value = item.get(name)
    return int(value["N"]) if value else None


def _time(item: Item, name: str) -> datetime | None:
    seconds = _number(item, name)
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None
