"""Bodies of the /s3 routes: exactly what Uppy's `@uppy/aws-s3` sends and reads (Companion's)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_ID = "9b1c0a4e-8f1f-4c4e-9d55-0d6c2f7e4a10"
_KEY = f"uploads/{_ID}"
_UPLOAD = "2~hyGe3OEc0bVy5eXQGmLZ8ktHzpCoNH"
_S3 = "https://s3.example.com/cloud-image-service"
_ETAG = '"a54357aff0632cce46d942af68356b38"'


class MultipartStart(BaseModel):
    """Start a multipart upload (what `@uppy/aws-s3` posts to `createMultipartUpload`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "filename": "panorama.png",
                    "type": "image/png",
                    "metadata": {"user_id": "alice", "tags": "trip,alps", "size": "73400320"},
                }
            ]
        }
    )

    filename: Annotated[
        str | None,
        Field(max_length=255, description="The file's name (kept for downloads)."),
    ] = None
    type: str = Field(description="The image's Content-Type (an accepted image type).")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Uppy's file metadata. Read: `user_id`, `tags` (a list, or text with "
        "commas), `description`, `size` (bytes, checked against the limit). Others are ignored.",
    )


class MultipartStarted(BaseModel):
    """A started upload: send the parts to the URLs of `GET /s3/multipart/{uploadId}/{n}`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"key": _KEY, "uploadId": _UPLOAD, "image_id": _ID, "part_size": 8388608}]
        }
    )

    key: str = Field(description="The object key; pass it back as `?key=` on every call.")
    uploadId: str = Field(description="S3's id of this multipart upload.")  # noqa: N815 (Uppy's)
    image_id: str = Field(description="The image this upload becomes (pending until verified).")
    part_size: int = Field(
        description="Part size to use, in bytes (CIS_MULTIPART_PART_BYTES); every part but "
        "the last must be at least 5 MiB."
    )


class SignedPart(BaseModel):
    """A presigned `UploadPart`: PUT the part's bytes to `url`, read the `ETag` header back."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"url": f"{_S3}/{_KEY}?partNumber=1&...", "expires": 300}]}
    )

    url: str = Field(description="Presigned PUT URL of the part.")
    expires: int = Field(description="Seconds the URL stays valid.")


class SignedParts(BaseModel):
    """Presigned `UploadPart` URLs by part number."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"presignedUrls": {"1": f"{_S3}/{_KEY}?partNumber=1&..."}}]}
    )

    presignedUrls: dict[str, str] = Field(  # noqa: N815 (Companion's name)
        description="URL of each part asked for, by part number (as text)."
    )


class PartOut(BaseModel):
    """A part S3 holds."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"PartNumber": 1, "ETag": '"a54357aff0632cce46d942af68356b38"', "Size": 8388608}
            ]
        }
    )

    PartNumber: int = Field(description="1 to 10,000.")
    ETag: str = Field(description="Its ETag, as S3 answered the part's PUT.")
    Size: int = Field(description="Bytes.")


class PartIn(BaseModel):
    """A part to assemble."""

    PartNumber: int = Field(ge=1, le=10_000, description="1 to 10,000.")
    ETag: str = Field(min_length=1, max_length=200, description="The part's ETag.")


class MultipartComplete(BaseModel):
    """The parts to assemble, as `@uppy/aws-s3` sends them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"parts": [{"PartNumber": 1, "ETag": '"a54357aff0632cce46d942af68356b38"'}]}
            ]
        }
    )

    parts: list[PartIn] = Field(min_length=1, max_length=10_000, description="Every part.")


class MultipartCompleted(BaseModel):
    """The assembled, verified upload."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "location": f"https://images.example.com/images/{_ID}",
                    "key": _KEY,
                    "image_id": _ID,
                    "status": "ready",
                }
            ]
        }
    )

    location: str = Field(description="The image's URL in this API (`GET` it for metadata).")
    key: str = Field(description="The upload's key.")
    image_id: str = Field(description="The image's id.")
    status: Literal["ready"] = Field(description="Always `ready`: a rejection is a 422.")


class Empty(BaseModel):
    """Nothing to say (Uppy needs a JSON body on every success)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{}]})


class UploadParameters(BaseModel):
    """A size-enforced POST form, for the files Uppy sends in one request."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "method": "POST",
                    "url": _S3,
                    "fields": {"key": _KEY, "Content-Type": "image/png", "policy": "..."},
                    "headers": {},
                }
            ]
        }
    )

    method: Literal["POST"] = Field(description="Always POST: the form's policy caps the size.")
    url: str = Field(description="Where to POST the form.")
    fields: dict[str, str] = Field(description="Form fields, before the file field `file`.")
    headers: dict[str, str] = Field(description="Extra headers (none).")
