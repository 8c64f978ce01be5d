"""Upload steps both clients share, without I/O of their own: the plan of an upload, the
request bodies and parameters, the resume state, the (sync) streams of the bytes."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from cloud_image_client._core import (
    FormBody,
    ProgressTracker,
    UploadMeta,
    part_size_for,
    without_none,
)
from cloud_image_client._source import CHUNK_BYTES, Source
from cloud_image_client._version import __version__
from cloud_image_client.errors import (
    ApiError,
    BadRequest,
    CloudImageError,
    ImageRejected,
    PayloadTooLarge,
    StorageError,
    UnknownContentType,
)
from cloud_image_client.resume import ResumeStore, UploadState
from cloud_image_client.sniff import guess_content_type

# A request body to send: its chunks, its length, and how many bytes of it went out so far.
Body = tuple[Iterator[bytes], int, Callable[[], int]]
BodyFactory = Callable[[], Body]

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class Stopped(CloudImageError):
    """A part stopped because another one failed (never seen outside the client)."""


def normalize_url(base_url: str) -> str:
    """`http://host:port` without a trailing slash; ValueError for anything but http(s)."""
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {base_url!r}")
    return url


def origin(url: str) -> str:
    """`scheme://host:port` of a URL (a presigned URL's query is never shown)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def auth_headers(token: str | None, api_key: str | None) -> dict[str, str]:
    """The credential's header and the User-Agent, sent with every API call (never to S3)."""
    headers = {"User-Agent": f"cloud-image-client/{__version__}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if api_key:
        headers["X-API-Key"] = api_key
    return headers


def body_headers(length: int, content_type: str | None) -> dict[str, str]:
    """Headers of a presigned request's body: its length (never chunked: S3 wants it)."""
    headers = {"Content-Length": str(length)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


def list_params(
    user_id: str | None,
    tag: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
) -> dict[str, Any]:
    """`GET /images`'s query."""
    return without_none(
        {
            "user_id": user_id,
            "tag": tag,
            "status": status,
            "limit": limit,
            "cursor": cursor,
            "created_after": created_after.isoformat() if created_after else None,
            "created_before": created_before.isoformat() if created_before else None,
        }
    )


def sha256_params(sha256: str, user_id: str | None) -> dict[str, Any]:
    """The duplicate lookup's query; ValueError for what is not a hex SHA-256."""
    if not _SHA256.match(sha256):
        raise ValueError(f"not a hex SHA-256: {sha256!r}")
    return without_none({"sha256": sha256.lower(), "user_id": user_id, "limit": 100})


def download_params(variant: str | None, disposition: str) -> dict[str, Any]:
    """`GET /images/{id}/download`'s query."""
    return without_none({"variant": variant, "disposition": disposition})


@dataclass(frozen=True)
class UploadPlan:
    """What an upload sends besides its bytes, its type guessed when not given."""

    meta: UploadMeta

    @classmethod
    def make(
        cls,
        src: Source,
        content_type: str | None,
        tags: Iterable[str],
        description: str | None,
        user_id: str | None,
    ) -> UploadPlan:
        """The plan; UnknownContentType when neither bytes nor name tell an image type."""
        kind = content_type or guess_content_type(src.head(), src.name)
        if kind is None:
            raise UnknownContentType(
                f"{src.name or 'the bytes'}: neither the bytes nor the name show a JPEG, PNG, "
                "GIF, WebP, AVIF or HEIC/HEIF image; pass content_type"
            )
        tag_list = (tags,) if isinstance(tags, str) else tuple(tags)
        return cls(UploadMeta(kind, src.name, src.size, tag_list, description, user_id))

    def resume_key(self, base_url: str, src: Source) -> str:
        """The state file's key of this upload."""
        return ResumeStore.key(base_url, self.meta.user_id, self.meta.content_type, src.identity())


def state_matches(state: UploadState, base_url: str, src: Source) -> bool:
    """The saved state is this file's upload to this service."""
    return state.base_url == base_url and state.size == src.size and state.source == src.identity()


def new_state(
    base_url: str, src: Source, plan: UploadPlan, started: Mapping[str, Any]
) -> UploadState:
    """The state of a multipart upload `POST /s3/multipart` just started."""
    return UploadState(
        base_url=base_url,
        source=src.identity(),
        size=src.size,
        content_type=plan.meta.content_type,
        image_id=str(started["image_id"]),
        key=str(started["key"]),
        upload_id=str(started["uploadId"]),
        part_size=part_size_for(src.size, int(started["part_size"])),
        started_at=time.time(),
    )


def complete_body(held: Mapping[int, str]) -> dict[str, Any]:
    """`POST /s3/multipart/{id}/complete`'s body: every part, in order."""
    return {"parts": [{"PartNumber": n, "ETag": held[n]} for n in sorted(held)]}


def upload_is_over(error: ApiError) -> bool:
    """After this answer to `complete`, the multipart upload cannot be resumed."""
    return isinstance(error, ImageRejected | PayloadTooLarge | BadRequest)


def etag(response: httpx.Response, number: int) -> str:
    """The ETag S3 gave a part (needed to complete the upload)."""
    value = response.headers.get("etag")
    if not value:
        raise StorageError(
            f"part {number}: S3 answered without an ETag header",
            status=response.status_code,
            code="missing_etag",
        )
    return str(value)


@dataclass(frozen=True)
class FormUpload:
    """Where to POST the form, and the body around the file."""

    url: str
    body: FormBody


def form_body(started: Mapping[str, Any], src: Source, plan: UploadPlan) -> FormUpload:
    """The POST form of `POST /images/upload`'s answer (fields first, the file last)."""
    form = started["upload_form"]
    fields = {str(name): str(value) for name, value in form["fields"].items()}
    return FormUpload(str(form["url"]), FormBody.build(fields, src.name, plan.meta.content_type))


class _Count:
    def __init__(self) -> None:
        self.sent = 0


def form_stream(form: FormUpload, src: Source, tracker: ProgressTracker) -> Body:
    """The form's body, the file read by chunks as it is sent."""
    count = _Count()

    def chunks() -> Iterator[bytes]:
        yield form.body.head
        for chunk in src.chunks():
            yield chunk
            count.sent += len(chunk)
            tracker.add(len(chunk))
        yield form.body.tail

    return chunks(), form.body.length(src.size), lambda: count.sent


def part_stream(data: bytes, tracker: ProgressTracker, stop: threading.Event) -> Body:
    """A part's body by chunks; it stops (Stopped) when another part failed."""
    count = _Count()

    def chunks() -> Iterator[bytes]:
        for offset in range(0, len(data), CHUNK_BYTES):
            if stop.is_set():
                raise Stopped("stopped: another part failed")
            chunk = data[offset : offset + CHUNK_BYTES]
            yield chunk
            count.sent += len(chunk)
            tracker.add(len(chunk))

    return chunks(), len(data), lambda: count.sent
