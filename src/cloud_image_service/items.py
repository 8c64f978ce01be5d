"""Conversion between `Image` and DynamoDB's typed attribute maps."""

from __future__ import annotations

from typing import Any

from cloud_image_service.models import Image, Status, format_timestamp, parse_timestamp

Item = dict[str, Any]


def typed_value(value: object) -> dict[str, Any]:
    """DynamoDB's typed form of a str, int or list of str."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
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
    optional = {"description": image.description, "filename": image.filename, "size": image.size}
    item |= {name: typed_value(value) for name, value in optional.items() if value is not None}
    return item


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
    )


def _text(item: Item, name: str) -> str | None:
    value = item.get(name)
    return str(value["S"]) if value else None


def _number(item: Item, name: str) -> int | None:
    value = item.get(name)
    return int(value["N"]) if value else None
