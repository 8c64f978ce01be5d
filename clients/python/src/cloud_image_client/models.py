"""What the API returns, as frozen dataclasses (the JSON as it came is kept in `raw`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any


def _time(value: Any) -> datetime | None:
    """An ISO 8601 instant of the API (`2026-11-26T14:35:31.407791Z`), or None."""
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class Variant:
    """A variant the service made (`thumb`, `preview`, ...): its size and type."""

    width: int
    height: int
    size: int
    content_type: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Variant:
        """From the API's JSON object."""
        return cls(
            width=int(data["width"]),
            height=int(data["height"]),
            size=int(data["size"]),
            content_type=str(data["content_type"]),
        )


@dataclass(frozen=True)
class Image:
    """An image record. `size`, `width`, `height` and `sha256` are set once it is verified
    (`status == "ready"`); `reason` when it was rejected; `variants` once they are made."""

    image_id: str
    user_id: str
    content_type: str
    status: str
    created_at: datetime
    tags: tuple[str, ...] = ()
    description: str | None = None
    filename: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    reason: str | None = None
    trailing_bytes_removed: int | None = None
    trashed_at: datetime | None = None
    variants: Mapping[str, Variant] = field(default_factory=dict)
    placeholder: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ready(self) -> bool:
        """Verified: it can be downloaded."""
        return self.status == "ready"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Image:
        """From the API's JSON object (unknown fields are ignored, kept in `raw`)."""
        created = _time(data.get("created_at"))
        if created is None:
            raise ValueError("an image without created_at")
        variants = {
            str(name): Variant.from_json(value)
            for name, value in (data.get("variants") or {}).items()
        }
        return cls(
            image_id=str(data["image_id"]),
            user_id=str(data["user_id"]),
            content_type=str(data["content_type"]),
            status=str(data["status"]),
            created_at=created,
            tags=tuple(str(tag) for tag in data.get("tags") or ()),
            description=data.get("description"),
            filename=data.get("filename"),
            size=_int(data.get("size")),
            width=_int(data.get("width")),
            height=_int(data.get("height")),
            sha256=data.get("sha256"),
            reason=data.get("reason"),
            trailing_bytes_removed=_int(data.get("trailing_bytes_removed")),
            trashed_at=_time(data.get("trashed_at")),
            variants=MappingProxyType(variants),
            placeholder=data.get("placeholder"),
            raw=MappingProxyType(dict(data)),
        )

    def to_json(self) -> dict[str, Any]:
        """The API's JSON object of this image."""
        return dict(self.raw)


@dataclass(frozen=True)
class Page:
    """One page of `GET /images`: its images and the cursor of the next page (None: last)."""

    items: list[Image]
    next_cursor: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Page:
        """From the API's `{items, next_cursor}`."""
        items = [Image.from_json(item) for item in data.get("items") or ()]
        return cls(items, data.get("next_cursor") or None)
