"""Image endpoints: authenticate, validate, call the service, return a schema."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from cloud_image_service.api.deps import CallerDep, LimitedCaller, Service
from cloud_image_service.api.schemas import (
    DownloadResponse,
    ErrorBody,
    ImageList,
    ImageOut,
    Message,
    UploadForm,
    UploadRequest,
    UploadResponse,
)
from cloud_image_service.auth.access import owner_scope, resolve_owner, resolve_user
from cloud_image_service.config import USER_ID_PATTERN
from cloud_image_service.domain.models import ListQuery, Status

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}

router = APIRouter(prefix="/images", tags=["images"], responses=ERRORS)


@router.post("/upload", status_code=201)
def create_upload(body: UploadRequest, service: Service, caller: LimitedCaller) -> UploadResponse:
    """Create a pending image and return a presigned PUT and POST form for its bytes."""
    upload = service.create_upload(
        resolve_owner(caller, body.user_id),
        body.content_type,
        tuple(body.tags),
        body.description,
        body.filename,
        body.size,
    )
    return UploadResponse(
        image_id=upload.image.image_id,
        upload_url=upload.upload_url,
        upload_headers={"Content-Type": upload.image.content_type},
        upload_form=UploadForm(**upload.upload_form),
        max_bytes=service.limits.max_upload_bytes,
        expires_at=upload.expires_at,
        status=upload.image.status.value,
    )


@router.get("")
def list_images(
    service: Service,
    caller: CallerDep,
    user_id: Annotated[str | None, Query(pattern=USER_ID_PATTERN)] = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    status: Literal["ready", "pending", "rejected", "all"] = "ready",
) -> ImageList:
    """List images (ready ones unless `status` says otherwise), newest first for one user."""
    statuses = tuple(Status) if status == "all" else (Status(status),)
    query = ListQuery(user_id=resolve_user(caller, user_id), tag=tag, statuses=statuses)
    items, next_cursor = service.list(query, limit, cursor)
    return ImageList(items=[ImageOut.of(image) for image in items], next_cursor=next_cursor)


@router.get("/{image_id}")
def get_image(image_id: str, service: Service, caller: CallerDep) -> ImageOut:
    """Metadata of one image."""
    return ImageOut.of(service.get(image_id, owner_scope(caller)))


@router.post("/{image_id}/complete")
def complete_upload(image_id: str, service: Service, caller: CallerDep) -> ImageOut:
    """Verify the uploaded bytes now: ready, or 422 with the reason it was rejected."""
    return ImageOut.of(service.complete(image_id, owner_scope(caller)))


@router.get("/{image_id}/download")
def download_image(
    image_id: str,
    service: Service,
    caller: CallerDep,
    disposition: Literal["attachment", "inline"] = "attachment",
) -> DownloadResponse:
    """A presigned GET of the bytes (409 before any upload, 422 if rejected)."""
    download = service.download(image_id, disposition, owner_scope(caller))
    return DownloadResponse(download_url=download.url, expires_at=download.expires_at)


@router.delete("/{image_id}")
def delete_image(image_id: str, service: Service, caller: CallerDep) -> Message:
    """Delete the bytes and the metadata of an image."""
    service.delete(image_id, owner_scope(caller))
    return Message(message="Image deleted successfully")
