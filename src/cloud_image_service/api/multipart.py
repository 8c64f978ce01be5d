"""Uppy's Companion protocol for S3: multipart uploads with presigned parts, and the POST form.

A stock `@uppy/aws-s3` (4.x/5.x) with `endpoint` set to this service works unmodified;
its `headers` option carries the Authorization or X-API-Key header. Every route answers
JSON, errors included (`{code, message, detail}`: Uppy shows `message`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from cloud_image_service.api.deps import CallerDep, LimitedCaller, S3Slot, Service
from cloud_image_service.api.openapi import RATE_LIMIT_EXTENSION
from cloud_image_service.api.openapi_errors import errors
from cloud_image_service.api.schemas import UploadRequest
from cloud_image_service.api.schemas.multipart import (
    Empty,
    MultipartComplete,
    MultipartCompleted,
    MultipartStart,
    MultipartStarted,
    PartOut,
    SignedPart,
    SignedParts,
    UploadParameters,
)
from cloud_image_service.api.strict_query import reject_unknown_query
from cloud_image_service.auth.access import owner_scope, resolve_owner
from cloud_image_service.auth.caller import Caller
from cloud_image_service.domain.multipart import MultipartUploads


def strict_params(request: Request) -> None:
    """`/s3/params` takes `metadata[...]` besides its declared parameters."""
    names = {n for n in request.query_params if not n.startswith("metadata[")}
    unknown = sorted(names - {"filename", "type"})
    if unknown:
        message = "unknown query parameter (this route takes: filename, type, metadata[...])"
        raise RequestValidationError(
            [
                {"loc": ("query", name), "msg": message, "type": "extra_forbidden"}
                for name in unknown
            ]
        )


router = APIRouter(
    prefix="/s3",
    tags=["uploads (Uppy)"],
    dependencies=[S3Slot, Depends(reject_unknown_query)],
)

UploadId = Annotated[str, Path(max_length=1024, description="S3's id of the multipart upload.")]
Key = Annotated[
    str,
    Query(max_length=1024, description="The upload's key, as `POST /s3/multipart` gave it."),
]
_NOT_FOUND = "No pending upload of yours has this uploadId and key (nothing else is said)."


def get_multipart(request: Request) -> MultipartUploads:
    """The process-wide multipart service."""
    uploads: MultipartUploads = request.app.state.multipart
    return uploads


Multipart = Annotated[MultipartUploads, Depends(get_multipart)]


def _upload_request(caller: Caller, fields: dict[str, Any]) -> UploadRequest:
    """Uppy's filename, type and metadata as an upload request, validated like one."""
    data = {key: value for key, value in fields.items() if value not in (None, "")}
    tags = data.get("tags")
    if isinstance(tags, str):  # Uppy sends metadata as text: "a,b"
        data["tags"] = [tag.strip() for tag in tags.split(",") if tag.strip()]
    try:
        return UploadRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


def _fields(body: MultipartStart) -> dict[str, Any]:
    meta = body.metadata
    return {
        "user_id": meta.get("user_id"),
        "content_type": body.type,
        "tags": meta.get("tags"),
        "description": meta.get("description"),
        "filename": body.filename or meta.get("name"),
        "size": meta.get("size"),
    }


@router.post(
    "/multipart",
    operation_id="create_multipart_upload",
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
        e413="`metadata.size` is above CIS_MAX_MULTIPART_BYTES.",
    ),
)
def create_multipart_upload(
    body: MultipartStart, uploads: Multipart, caller: LimitedCaller
) -> MultipartStarted:
    """Start a multipart upload: a pending image whose parts go straight to S3."""
    request = _upload_request(caller, _fields(body))
    started = uploads.start(
        resolve_owner(caller, request.user_id),
        request.content_type,
        request.filename,
        tuple(request.tags),
        request.description,
        request.size,
    )
    return MultipartStarted(
        key=started.image.upload_key,
        uploadId=started.upload_id,
        image_id=started.image.image_id,
        part_size=started.part_bytes,
    )


@router.get(
    "/multipart/{upload_id}/batch",
    operation_id="sign_parts_batch",
    responses=errors(400, 401, 404, 422, 503, e404=_NOT_FOUND),
)
def sign_parts_batch(
    upload_id: UploadId,
    key: Key,
    uploads: Multipart,
    caller: CallerDep,
    partNumbers: Annotated[  # noqa: N803 (Companion's name)
        str, Query(max_length=60_000, description="Part numbers, comma-separated: `1,2,3`.")
    ],
) -> SignedParts:
    """Presigned `UploadPart` URLs of several parts at once."""
    numbers = _numbers(partNumbers)
    urls = uploads.sign(upload_id, key, numbers, owner_scope(caller))
    return SignedParts(presignedUrls={str(number): url for number, url in urls.items()})


def _numbers(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        errors = [{"loc": ("query", "partNumbers"), "msg": "must be numbers, comma-separated"}]
        raise RequestValidationError(errors) from None


@router.get(
    # `:int` so that `GET .../complete` is not a part number: it is a 405, as it should be.
    "/multipart/{upload_id}/{part_number:int}",
    operation_id="sign_part",
    responses=errors(400, 401, 404, 422, 503, e404=_NOT_FOUND),
)
def sign_part(
    upload_id: UploadId,
    key: Key,
    uploads: Multipart,
    caller: CallerDep,
    request: Request,
    part_number: Annotated[int, Path(ge=1, le=10_000, description="1 to 10,000.")],
) -> SignedPart:
    """A presigned `UploadPart` URL for one part (signing parts is not rate limited)."""
    urls = uploads.sign(upload_id, key, [part_number], owner_scope(caller))
    expires = request.app.state.runtime.settings.presign_ttl_seconds
    return SignedPart(url=urls[part_number], expires=expires)


@router.get(
    "/multipart/{upload_id}",
    operation_id="list_parts",
    responses=errors(401, 404, 422, 503, e404=_NOT_FOUND),
)
def list_parts(
    upload_id: UploadId, key: Key, uploads: Multipart, caller: CallerDep
) -> list[PartOut]:
    """Every part S3 holds (pages of 1,000 followed): resume by sending only the others."""
    parts = uploads.parts(upload_id, key, owner_scope(caller))
    return [PartOut(PartNumber=p.number, ETag=p.etag, Size=p.size) for p in parts]


@router.post(
    "/multipart/{upload_id}/complete",
    operation_id="complete_multipart_upload",
    openapi_extra={RATE_LIMIT_EXTENSION: "verify"},
    responses=errors(
        400,
        401,
        404,
        409,
        413,
        422,
        429,
        503,
        e400="A part is missing, listed twice, or smaller than 5 MiB before the last "
        "(the message names it).",
        e404=_NOT_FOUND,
        e413="The parts add up to more than CIS_MAX_MULTIPART_BYTES: the upload is aborted.",
        e422="The assembled bytes failed verification (the reason), or an invalid field.",
    ),
)
def complete_multipart_upload(
    upload_id: UploadId,
    key: Key,
    body: MultipartComplete,
    uploads: Multipart,
    caller: CallerDep,
    request: Request,
) -> MultipartCompleted:
    """Assemble the parts and verify the image: `ready`, or 422 with the reason."""
    sent = [(part.PartNumber, part.ETag) for part in body.parts]
    image = uploads.complete(upload_id, key, sent, owner_scope(caller))
    location = str(request.url_for("get_image", image_id=image.image_id))
    return MultipartCompleted(
        location=location, key=image.upload_key, image_id=image.image_id, status="ready"
    )


@router.delete(
    "/multipart/{upload_id}",
    operation_id="abort_multipart_upload",
    responses=errors(401, 404, 422, 503, e404=_NOT_FOUND),
)
def abort_multipart_upload(
    upload_id: UploadId, key: Key, uploads: Multipart, caller: CallerDep
) -> Empty:
    """Abort: S3 drops the parts, the image is rejected (reason `aborted`)."""
    uploads.abort(upload_id, key, owner_scope(caller))
    return Empty()


params_router = APIRouter(
    prefix="/s3", tags=["uploads (Uppy)"], dependencies=[Depends(strict_params)]
)


@params_router.get(
    "/params",
    operation_id="get_upload_parameters",
    openapi_extra={RATE_LIMIT_EXTENSION: "uploads"},
    responses=errors(400, 401, 403, 413, 422, 429, 503),
)
def get_upload_parameters(
    request: Request,
    service: Service,
    caller: LimitedCaller,
    filename: Annotated[str | None, Query(max_length=255, description="The file's name.")] = None,
    type: Annotated[str, Query(description="The image's Content-Type.")] = "",
) -> UploadParameters:
    """The size-enforced POST form for one file (`metadata[user_id]=`, `metadata[tags]=`)."""
    meta = {
        name[len("metadata[") : -1]: value
        for name, value in request.query_params.items()
        if name.startswith("metadata[") and name.endswith("]")
    }
    fields = {
        "user_id": meta.get("user_id"),
        "content_type": type,
        "tags": meta.get("tags"),
        "description": meta.get("description"),
        "filename": filename or meta.get("name"),
        "size": meta.get("size"),
    }
    upload = _upload_request(caller, fields)
    made = service.create_upload(
        resolve_owner(caller, upload.user_id),
        upload.content_type,
        tuple(upload.tags),
        upload.description,
        upload.filename,
        upload.size,
    )
    form = made.upload_form
    return UploadParameters(method="POST", url=form["url"], fields=form["fields"], headers={})
