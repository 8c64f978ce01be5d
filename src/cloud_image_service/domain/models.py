"""The domain record of one image, independent of HTTP and of DynamoDB."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum


class Status(StrEnum):
    """Lifecycle of an image record."""

    PENDING = "pending"
    READY = "ready"
    REJECTED = "rejected"


KEY_PREFIX = "images/"  # every object the service issues URLs for lives under it


@dataclass(frozen=True)
class Image:
    """Metadata of one image; the bytes live in S3 under `key`."""

    image_id: str
    user_id: str
    content_type: str
    created_at: datetime
    status: Status = Status.PENDING
    tags: tuple[str, ...] = ()
    description: str | None = None
    filename: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    reason: str | None = None  # why it was rejected
    expires_at: datetime | None = None  # DynamoDB TTL: pending and rejected records expire

    @property
    def key(self) -> str:
        """Object key: derived from the server-made id, never from user input."""
        return f"{KEY_PREFIX}{self.image_id}"

    def replace(self, **changes: object) -> Image:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD on an S3 object tells."""

    size: int
    content_type: str | None


@dataclass(frozen=True)
class Page:
    """One page of a catalog listing and the key to continue from (None at the end)."""

    items: list[Image]
    next_key: dict[str, str] | None = None


@dataclass(frozen=True)
class ListQuery:
    """What a listing asks for; `fingerprint` binds a cursor to it."""

    user_id: str | None
    tag: str | None = None
    statuses: tuple[Status, ...] = (Status.READY,)

    def fingerprint(self) -> str:
        """A stable text identifying the query (not the page size)."""
        statuses = ",".join(sorted(self.statuses))
        return f"{self.user_id or ''}|{self.tag or ''}|{statuses}"


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """Fixed-width ISO-8601 UTC so that timestamps sort as text (the index sort key)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Inverse of `format_timestamp`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
