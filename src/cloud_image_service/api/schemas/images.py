"""Bodies of the /images routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from cloud_image_service.api.schemas.fields import (
    MAX_TAGS,
    ContentType,
    Filename,
    Tag,
    UserId,
    check_tags,
)
from cloud_image_service.domain.models import Image

_ID = "9b1c0a4e-8f1f-4c4e-9d55-0d6c2f7e4a10"
_WHEN = "2026-11-26T12:00:00Z"
_S3 = "https://s3.example.com/cloud-image-service"

_IMAGE_EXAMPLE: dict[str, Any] = {
    "image_id": _ID,
    "user_id": "alice",
    "content_type": "image/png",
    "tags": ["cat"],
    "description": "Our cat on the sofa",
    "filename": "cat.png",
    "status": "ready",
    "size": 20322,
    "width": 640,
    "height": 480,
    "sha256": "5f1c3e0e9b7b3c1d2a4f6e8d0c2b4a6f8e0d2c4b6a8f0e2d4c6b8a0f2e4d6c8a",
    "reason": None,
    "trailing_bytes_removed": None,
    "created_at": _WHEN,
    "trashed_at": None,
    "variants": {
        "thumb": {"width": 256, "height": 192, "size": 9123, "content_type": "image/webp"},
        "preview": {"width": 640, "height": 480, "size": 48211, "content_type": "image/webp"},
    },
    "placeholder": "3OcRJYB4d3h/iIeHeEh3eIhw+j3A",
}


class UploadRequest(BaseModel):
    """Ask for a presigned upload of one image."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "alice",
                    "content_type": "image/png",
                    "tags": ["cat"],
                    "description": "Our cat on the sofa",
                    "filename": "cat.png",
                    "size": 20322,
                }
            ]
        }
    )

    user_id: Annotated[
        UserId | None,
        Field(
            description="Owner of the image. Defaults to the authenticated user; another "
            "user's id needs an admin. Required when authentication is off."
        ),
    ] = None
    content_type: ContentType
    tags: Annotated[
        list[Tag],
        Field(
            max_length=MAX_TAGS,
            description=f"At most {MAX_TAGS} tags of 1-64 characters; duplicates are dropped.",
        ),
        AfterValidator(check_tags),
    ] = []
    description: Annotated[
        str | None, Field(max_length=2000, description="Free text, at most 2000 characters.")
    ] = None
    filename: Annotated[
        Filename | None,
        Field(
            description="Name for the download's Content-Disposition; only its base name is "
            "kept (at most 255 characters)."
        ),
    ] = None
    size: Annotated[
        int | None,
        Field(ge=1, description="Bytes the client will send; above the upload limit: 413."),
    ] = None


class UploadForm(BaseModel):
    """A presigned POST: send `fields` then the file (last) as multipart/form-data to `url`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": _S3,
                    "fields": {
                        "Content-Type": "image/png",
                        "key": f"uploads/{_ID}",
                        "x-amz-algorithm": "AWS4-HMAC-SHA256",
                        "policy": "eyJleHBpcmF0aW9uIjog...",
                        "x-amz-signature": "3f1c...",
                    },
                }
            ]
        }
    )

    url: str = Field(description="Where to POST the form (the bucket's URL).")
    fields: dict[str, str] = Field(
        description="Form fields to send as they are, before the file field (named `file`). "
        "The policy pins the key, the Content-Type and the size range."
    )


class UploadResponse(BaseModel):
    """Where and how to send the bytes: a presigned PUT, or the POST form (size-enforced)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "image_id": _ID,
                    "upload_url": f"{_S3}/uploads/{_ID}?X-Amz-Algorithm=AWS4-HMAC-SHA256&...",
                    "upload_method": "PUT",
                    "upload_headers": {"Content-Type": "image/png"},
                    "upload_form": {"url": _S3, "fields": {"key": f"uploads/{_ID}"}},
                    "max_bytes": 26214400,
                    "expires_at": "2026-11-26T12:05:00Z",
                    "status": "pending",
                }
            ]
        }
    )

    image_id: str = Field(description="Id of the new image (a UUID).")
    upload_url: str = Field(description="Presigned PUT URL for the bytes (no size limit at S3).")
    upload_method: Literal["PUT"] = Field(default="PUT", description="Method for `upload_url`.")
    upload_headers: dict[str, str] = Field(
        description="Headers the PUT must carry (the signed Content-Type)."
    )
    upload_form: UploadForm = Field(description="The size-enforced alternative: a POST form.")
    max_bytes: int = Field(description="Largest object the service will accept.")
    expires_at: datetime = Field(description="When both URLs stop working.")
    status: str = Field(description="`pending` until the bytes are verified.")


class VariantOut(BaseModel):
    """A made variant of an image."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"width": 256, "height": 171, "size": 9123, "content_type": "image/webp"}]
        }
    )

    width: int = Field(description="Pixels; fits in the variant's box, never upscaled.")
    height: int = Field(description="Pixels.")
    size: int = Field(description="Bytes.")
    content_type: str = Field(description="Its type (CIS_VARIANT_FORMAT when it was made).")


class ImageOut(BaseModel):
    """An image's metadata."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_IMAGE_EXAMPLE]}
    )

    image_id: str = Field(description="The image's id (a UUID).")
    user_id: str = Field(description="Its owner.")
    content_type: str = Field(description="Its type, as declared and verified.")
    tags: list[str] = Field(description="Its tags.")
    description: str | None = Field(description="Free text given at upload.")
    filename: str | None = Field(description="Name used for downloads.")
    status: str = Field(
        description="`pending` (waiting for bytes or their check), `ready`, `rejected` "
        "(see `reason`), `trashed`."
    )
    size: int | None = Field(description="Bytes of the served original, once verified.")
    width: int | None = Field(description="Pixels, once verified.")
    height: int | None = Field(description="Pixels, once verified.")
    sha256: str | None = Field(description="Hex SHA-256 of the served original, once verified.")
    reason: str | None = Field(description="Why the image was rejected.")
    trailing_bytes_removed: int | None = Field(
        default=None,
        description="Bytes of other data found after the image's end marker and not stored "
        "(CIS_TRAILING_DATA=strip); null when there were none.",
    )
    created_at: datetime = Field(description="When the upload was asked for (UTC).")
    trashed_at: datetime | None = Field(
        default=None, description="When it was moved to the trash (status `trashed`)."
    )
    variants: dict[str, VariantOut] = Field(
        default_factory=dict,
        description="The variants made so far, by name (`{}` until made, within seconds of "
        "`ready`); download one with `GET /images/{id}/download?variant=NAME`.",
    )
    placeholder: str | None = Field(
        default=None,
        description="ThumbHash of the image, base64 (about 25 bytes): paint it blurred "
        "before the thumbnail arrives. Null until the variants are made.",
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
            variants={
                name: VariantOut(
                    width=v.width, height=v.height, size=v.size, content_type=v.content_type
                )
                for name, v in image.variants.items()
            },
            placeholder=image.placeholder,
        )


class ImageList(BaseModel):
    """One page of images; follow `next_cursor` until it is null."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_IMAGE_EXAMPLE], "next_cursor": None}]}
    )

    items: list[ImageOut] = Field(description="This page's images, newest first for one user.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class DownloadResponse(BaseModel):
    """A presigned GET of the image bytes."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "download_url": f"{_S3}/images/{_ID}?response-content-type=image%2Fpng&...",
                    "expires_at": "2026-11-26T12:05:00Z",
                }
            ]
        }
    )

    download_url: str = Field(
        description="Presigned GET; it forces the stored type and the file name."
    )
    expires_at: datetime = Field(description="When the URL stops working.")
