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
    TRASHED = "trashed"  # deleted with CIS_TRASH_DAYS > 0: restorable until purged
    DELETING = "deleting"  # hidden at once; its objects are being removed


# What a listing means by `status=all`: trashed and deleting records are never in it.
LISTED_STATUSES = (Status.READY, Status.PENDING, Status.REJECTED)

# Served originals: no presigned URL ever writes under this prefix, only the verifier.
KEY_PREFIX = "images/"
# Where clients upload (presigned PUT, POST form, multipart); verified bytes are copied out.
UPLOAD_PREFIX = "uploads/"
# Thumbnails and previews made by the service: variants/<image_id>/<name>.
VARIANT_PREFIX = "variants/"
# Kinds of work that wait in the sweep's index besides pending, deleting and trashed.
VARIANTS_DUE = "variants"


@dataclass(frozen=True)
class Variant:
    """One made variant of an image."""

    width: int
    height: int
    size: int
    content_type: str


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
    trailing_bytes_removed: int | None = None  # data after the image's end marker, stripped
    trashed_at: datetime | None = None
    claim_until: int | None = None  # epoch seconds: a verifier holds the image until then
    due_at: datetime | None = None  # when the sweep acts on it (pending, deleting, trashed)
    due_kind: str | None = None  # which work is due: a status, or `variants`
    variants: dict[str, Variant] = dataclasses.field(default_factory=dict)
    placeholder: str | None = None  # ThumbHash, base64
    variant_attempts: int = 0  # failed tries at making the variants
    upload_id: str | None = None  # an S3 multipart upload's id (its parts go to upload_key)

    @property
    def key(self) -> str:
        """Key of the served original: derived from the server-made id, never from input."""
        return f"{KEY_PREFIX}{self.image_id}"

    @property
    def upload_key(self) -> str:
        """Key that presigned uploads write to; never served."""
        return f"{UPLOAD_PREFIX}{self.image_id}"

    @property
    def owner_sha256(self) -> str | None:
        """The duplicate-check index key of a verified image: `<user_id>#<sha256>`."""
        return f"{self.user_id}#{self.sha256}" if self.sha256 else None

    def variant_key(self, name: str) -> str:
        """Key of a variant; its type is in the object's Content-Type and the record."""
        return f"{VARIANT_PREFIX}{self.image_id}/{name}"

    def replace(self, **changes: object) -> Image:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD on an S3 object tells."""

    size: int
    content_type: str | None
    etag: str | None = None


@dataclass(frozen=True)
class Part:
    """One part of a multipart upload, as S3 holds it."""

    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class PendingUpload:
    """A multipart upload S3 holds, not completed or aborted yet."""

    key: str
    upload_id: str
    initiated: datetime


@dataclass(frozen=True)
class StoredObject:
    """One entry of a bucket listing."""

    key: str
    size: int
    last_modified: datetime


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
    created_after: datetime | None = None
    created_before: datetime | None = None
    sha256: str | None = None  # the user's ready images with exactly these bytes

    def fingerprint(self) -> str:
        """A stable text identifying the query (not the page size)."""
        statuses = ",".join(sorted(self.statuses))
        after = format_timestamp(self.created_after) if self.created_after else ""
        before = format_timestamp(self.created_before) if self.created_before else ""
        window = f"{after}|{before}|{self.sha256 or ''}"
        return f"{self.user_id or ''}|{self.tag or ''}|{statuses}|{window}"


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """Fixed-width ISO-8601 UTC so that timestamps sort as text (the index sort key)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Inverse of `format_timestamp`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
