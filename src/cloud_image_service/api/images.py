"""Image endpoints: authenticate, validate, call the service, return a schema.

The hot routes (upload, list, get, download) are `async def` that run their blocking part
(the rate-limit hit and the service's store calls) in one hop to the thread pool: a sync
route would hop for itself and again to validate its response (see deps.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from cloud_image_service.api.deps import (
    CallerDep,
    Limit,
    S3Slot,
    Service,
    UploadLimitDep,
    VerifyLimitDep,
)
from cloud_image_service.api.openapi import RATE_LIMIT_EXTENSION
from cloud_image_service.api.openapi_errors import errors
from cloud_image_service.api.schemas import (
    DownloadResponse,
    ImageList,
    ImageOut,
    Message,
    UploadForm,
    UploadRequest,
    UploadResponse,
)
from cloud_image_service.api.strict_query import reject_unknown_query
from cloud_image_service.auth.access import owner_scope, resolve_owner, resolve_user
from cloud_image_service.auth.errors import TooManyRequests
from cloud_image_service.config import USER_ID_PATTERN
from cloud_image_service.domain.errors import BadRequest
from cloud_image_service.domain.models import LISTED_STATUSES, ListQuery, Status
from cloud_image_service.domain.service import ImageService, NewUpload

router = APIRouter(prefix="/images", tags=["images"], dependencies=[Depends(reject_unknown_query)])

ImageId = Annotated[str, Path(description="The image's id (a UUID) from `POST /images/upload`.")]


@router.post(
    "/upload",
    status_code=201,
    operation_id="create_upload",
    openapi_extra={RATE_LIMIT_EXTENSION: "uploads"},
    responses=errors(
        400,
        401,
        403,
        413,
        422,
        429,
        503,
        e400="`user_id` is missing and authentication is off.",
        e413="Declared `size` above the upload limit (or a body over 64 KiB).",
        e429="Upload rate limit (`CIS_RATE_LIMIT`) reached.",
    ),
)
async def create_upload(
    body: UploadRequest, service: Service, caller: CallerDep, limit: UploadLimitDep
) -> UploadResponse:
    """Create a pending image and return a presigned PUT and POST form for its bytes."""
    owner = resolve_owner(caller, body.user_id)
    upload = await run_in_threadpool(_create, service, limit, owner, body)
    return UploadResponse(
        image_id=upload.image.image_id,
        upload_url=upload.upload_url,
        upload_headers={"Content-Type": upload.image.content_type},
        upload_form=UploadForm(**upload.upload_form),
        max_bytes=service.limits.max_upload_bytes,
        expires_at=upload.expires_at,
        status=upload.image.status.value,
    )


def _create(service: ImageService, limit: Limit, owner: str, body: UploadRequest) -> NewUpload:
    # The rate-limit hit is counted with the record's write (one DynamoDB transaction), for
    # a valid request only.
    try:
        return service.create_upload(
            owner,
            body.content_type,
            tuple(body.tags),
            body.description,
            body.filename,
            body.size,
            limit.admission(),
        )
    except TooManyRequests:
        limit.refused()
        raise


ListStatus = Literal["ready", "pending", "rejected", "trashed", "all"]


@router.get(
    "",
    operation_id="list_images",
    responses=errors(
        400, 401, 403, 422, 503, e400="`cursor` was modified or belongs to another list."
    ),
)
async def list_images(
    service: Service,
    caller: CallerDep,
    user_id: Annotated[
        str | None,
        Query(
            pattern=USER_ID_PATTERN,
            description="Whose images; defaults to the caller (authentication on). "
            "Without it an admin (or anyone, authentication off) lists every user's.",
        ),
    ] = None,
    tag: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Only images with this tag.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Images per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=2048, description="`next_cursor` of the previous page."),
    ] = None,
    status: Annotated[
        ListStatus,
        Query(
            description="`ready` (default), `pending`, `rejected`, `trashed`, or `all` "
            "(ready, pending and rejected)."
        ),
    ] = "ready",
    created_after: Annotated[
        datetime | None,
        Query(
            description="Only images created after this instant (ISO 8601, e.g. "
            "`2026-11-01T00:00:00Z`): a range of the index's sort key, not a filter."
        ),
    ] = None,
    created_before: Annotated[
        datetime | None, Query(description="Only images created before this instant (ISO 8601).")
    ] = None,
    sha256: Annotated[
        str | None,
        Query(
            pattern="^[0-9a-f]{64}$",
            description="The user's ready images with exactly these bytes (hex SHA-256 of the "
            "file): a duplicate check by key lookup, before uploading. Not combined with other "
            "filters.",
        ),
    ] = None,
) -> ImageList:
    """List images (ready ones unless `status` says otherwise), newest first for one user."""
    owner = resolve_user(caller, user_id)
    if sha256 is not None:
        _only_sha256(owner, tag, status, created_after, created_before)
    statuses = LISTED_STATUSES if status == "all" else (Status(status),)
    query = ListQuery(
        user_id=owner,
        tag=tag,
        statuses=statuses,
        created_after=_aware(created_after),
        created_before=_aware(created_before),
        sha256=sha256,
    )
    items, next_cursor = await run_in_threadpool(service.list, query, limit, cursor)
    return ImageList(items=[ImageOut.of(image) for image in items], next_cursor=next_cursor)


def _only_sha256(owner: str | None, *filters: object) -> None:
    """A duplicate check is one user's ready images by their bytes: nothing to combine."""
    if owner is None:
        raise BadRequest("sha256 needs user_id: duplicates are looked up per user")
    if any(value not in (None, "ready") for value in filters):
        raise BadRequest("sha256 is not combined with tag, status or created_after/before")


def _aware(moment: datetime | None) -> datetime | None:
    """A time without a zone is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@router.get("/{image_id}", operation_id="get_image", responses=errors(401, 404, 503))
async def get_image(image_id: ImageId, service: Service, caller: CallerDep) -> ImageOut:
    """Metadata of one image."""
    return ImageOut.of(await run_in_threadpool(service.get, image_id, owner_scope(caller)))


_VERIFY_ERRORS = errors(
    401,
    404,
    409,
    422,
    429,
    503,
    e409="Nothing uploaded yet, or another request is verifying it (see `Retry-After`).",
    e422="The bytes failed verification: the message gives the reason.",
    e429="Verification rate limit (`CIS_VERIFY_RATE_LIMIT`) reached.",
)
_DOWNLOAD_ERRORS = _VERIFY_ERRORS | errors(
    404,
    409,
    e404="No such image (or another user's, or trashed), or `variant_not_found`: a name "
    "that is not configured (the message lists them).",
    e409="Nothing uploaded yet, another request is verifying it, or `variant_not_ready`: "
    "the variant is being made (see `Retry-After`).",
)


@router.post(
    "/{image_id}/complete",
    operation_id="complete_upload",
    openapi_extra={RATE_LIMIT_EXTENSION: "verify"},
    responses=_VERIFY_ERRORS,
    dependencies=[S3Slot],
)
def complete_upload(
    image_id: ImageId, service: Service, caller: CallerDep, verify_limit: VerifyLimitDep
) -> ImageOut:
    """Verify the uploaded bytes now: ready, or 422 with the reason it was rejected."""
    verify_limit()
    return ImageOut.of(service.complete(image_id, owner_scope(caller)))


@router.get(
    "/{image_id}/download",
    operation_id="download_image",
    openapi_extra={RATE_LIMIT_EXTENSION: "verify"},
    responses=_DOWNLOAD_ERRORS,
    dependencies=[S3Slot],
)
async def download_image(
    image_id: ImageId,
    service: Service,
    caller: CallerDep,
    verify_limit: VerifyLimitDep,
    disposition: Annotated[
        Literal["attachment", "inline"],
        Query(description="`attachment` downloads; `inline` lets a browser show it."),
    ] = "attachment",
    variant: Annotated[
        str | None,
        Query(
            max_length=32,
            description="A configured variant (`thumb`, `preview` by default) instead of "
            "the original.",
        ),
    ] = None,
) -> DownloadResponse:
    """A presigned GET of the bytes or of a variant (409 before any upload, 422 if rejected)."""
    download = await run_in_threadpool(
        service.download, image_id, disposition, owner_scope(caller), verify_limit, variant
    )
    return DownloadResponse(download_url=download.url, expires_at=download.expires_at)


@router.delete(
    "/{image_id}",
    operation_id="delete_image",
    responses=errors(401, 404, 503),
    dependencies=[S3Slot],
)
def delete_image(
    image_id: ImageId,
    service: Service,
    caller: CallerDep,
    permanent: Annotated[
        bool,
        Query(description="Remove now, even with the trash on (also empties a trashed image)."),
    ] = False,
) -> Message:
    """Delete an image: to the trash when CIS_TRASH_DAYS > 0, else its bytes and metadata."""
    service.delete(image_id, owner_scope(caller), permanent)
    return Message(message="Image deleted successfully")


@router.post(
    "/{image_id}/restore",
    operation_id="restore_image",
    responses=errors(401, 404, 409, 503, e409="The image is not in the trash."),
)
def restore_image(image_id: ImageId, service: Service, caller: CallerDep) -> ImageOut:
    """Bring a trashed image back to `ready`."""
    return ImageOut.of(service.restore(image_id, owner_scope(caller)))
