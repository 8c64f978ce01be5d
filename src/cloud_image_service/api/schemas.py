"""Request and response bodies of the API (they become the OpenAPI schema)."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from cloud_image_service.config import ALLOWED_CONTENT_TYPES, USER_ID_PATTERN
from cloud_image_service.domain.models import Image

MAX_TAGS = 20

UserId = Annotated[
    str,
    StringConstraints(pattern=USER_ID_PATTERN),
    Field(description="1-128 characters of A-Z a-z 0-9 . _ @ -", examples=["alice@example.com"]),
]


def _check_content_type(value: str) -> str:
    normalized = value.strip().lower()
    if normalized not in ALLOWED_CONTENT_TYPES:
        raise ValueError(f"must be one of {', '.join(ALLOWED_CONTENT_TYPES)} (got {value!r})")
    return normalized


def _no_control_characters(value: str) -> str:
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise ValueError("must not contain control characters")
    return value


def _check_tags(tags: list[str]) -> list[str]:
    # Duplicates are dropped (tags are a set) while keeping the client's order.
    return list(dict.fromkeys(tags))


def _basename(value: str) -> str:
    # The name only ever goes into Content-Disposition; path parts mean nothing there.
    name = value.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name:
        raise ValueError("must name a file, not a folder")
    return name


ContentType = Annotated[
    str,
    AfterValidator(_check_content_type),
    Field(
        description="One of " + ", ".join(ALLOWED_CONTENT_TYPES),
        examples=["image/png"],
        json_schema_extra={"enum": list(ALLOWED_CONTENT_TYPES)},
    ),
]
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_no_control_characters),
]
Filename = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    AfterValidator(_no_control_characters),
    AfterValidator(_basename),
]


class UploadRequest(BaseModel):
    """Ask for a presigned upload of one image."""

    user_id: Annotated[
        UserId | None,
        Field(description="Defaults to the authenticated user; another user's id needs admin."),
    ] = None
    content_type: ContentType
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_check_tags)] = []
    description: Annotated[str | None, Field(max_length=2000)] = None
    filename: Filename | None = None
    size: Annotated[
        int | None, Field(ge=1, description="Bytes the client will send; above the limit: 413.")
    ] = None


class UploadForm(BaseModel):
    """A presigned POST: send `fields` then the file (last) as multipart/form-data to `url`."""

    url: str
    fields: dict[str, str]


class UploadResponse(BaseModel):
    """Where and how to send the bytes: a presigned PUT, or the POST form (size-enforced)."""

    image_id: str
    upload_url: str
    upload_method: Literal["PUT"] = "PUT"
    upload_headers: dict[str, str]
    upload_form: UploadForm
    max_bytes: int
    expires_at: datetime
    status: str


class ImageOut(BaseModel):
    """An image's metadata."""

    model_config = ConfigDict(from_attributes=True)

    image_id: str
    user_id: str
    content_type: str
    tags: list[str]
    description: str | None
    filename: str | None
    status: str
    size: int | None = Field(description="Bytes, once the upload is verified.")
    width: int | None
    height: int | None
    sha256: str | None = Field(description="Hex SHA-256 of the verified bytes.")
    reason: str | None = Field(description="Why the image was rejected.")
    trailing_bytes_removed: int | None = Field(
        default=None,
        description="Bytes of other data found after the image's end marker and not stored "
        "(CIS_TRAILING_DATA=strip); null when there were none.",
    )
    created_at: datetime
    trashed_at: datetime | None = Field(
        default=None, description="When it was moved to the trash (status `trashed`)."
    )

    @classmethod
    def of(cls, image: Image) -> ImageOut:
        """The public view of a domain record."""
        return cls(
            image_id=image.image_id,
            user_id=image.user_id,
            content_type=image.content_type,
            tags=list(image.tags),
            description=image.description,
            filename=image.filename,
            status=image.status.value,
            size=image.size,
            width=image.width,
            height=image.height,
            sha256=image.sha256,
            reason=image.reason,
            trailing_bytes_removed=image.trailing_bytes_removed,
            created_at=image.created_at,
            trashed_at=image.trashed_at,
        )


class ImageList(BaseModel):
    """One page of images; follow `next_cursor` until it is null."""

    items: list[ImageOut]
    next_cursor: str | None


class DownloadResponse(BaseModel):
    """A presigned GET of the image bytes."""

    download_url: str
    expires_at: datetime


class Message(BaseModel):
    """A plain confirmation."""

    message: str


class ErrorBody(BaseModel):
    """Every error: a stable code and a message naming the problem (`detail` repeats it)."""

    code: str
    message: str
    detail: str


class Health(BaseModel):
    """The process is alive."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """State of each store: 'ok' or what failed."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str]
