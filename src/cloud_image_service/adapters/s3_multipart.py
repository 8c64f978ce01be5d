"""S3 multipart uploads: create, presign parts, list, complete, abort. Every such call lives here.

The bytes go from the client to S3 with presigned `UploadPart` URLs; the service only
starts, inspects and finishes uploads, as Uppy's Companion server does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cloud_image_service.adapters.clients import error_code, raise_unavailable
from cloud_image_service.domain.errors import MultipartNotFound
from cloud_image_service.domain.models import Part, PendingUpload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BACKEND = "S3"
_GONE = frozenset({"NoSuchUpload", "404", "NotFound"})


class S3Multipart:
    """Multipart uploads to the image bucket; `presign_client` signs for the clients' host."""

    def __init__(
        self,
        bucket: str,
        client: S3Client,
        presign_ttl: int,
        presign_client: S3Client | None = None,
    ) -> None:
        self.bucket = bucket
        self.client = client
        self.presign_ttl = presign_ttl
        self.presign_client = presign_client or client

    def _call(self, operation: str, **params: Any) -> Any:
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **params)
        except ClientError as exc:
            if error_code(exc) in _GONE:  # finished, aborted, or never started
                raise MultipartNotFound(params.get("UploadId", "")) from exc
            raise_unavailable(BACKEND, exc)
        except BotoCoreError as exc:
            raise_unavailable(BACKEND, exc)

    def create(self, key: str, content_type: str) -> str:
        """Start a multipart upload of `key`; its upload id."""
        upload_id: str = self._call("create_multipart_upload", Key=key, ContentType=content_type)[
            "UploadId"
        ]
        return upload_id

    def presign_part(self, key: str, upload_id: str, part_number: int) -> str:
        """A PUT URL for one part (no Content-Type is signed: parts are raw bytes)."""
        params = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id}
        try:
            url: str = self.presign_client.generate_presigned_url(
                "upload_part",
                Params=params | {"PartNumber": part_number},
                ExpiresIn=self.presign_ttl,
            )
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)
        return url

    def parts(self, key: str, upload_id: str) -> list[Part]:
        """Every part S3 holds, following its pages of 1,000."""
        found: list[Part] = []
        marker = 0
        while True:
            page = self._call(
                "list_parts", Key=key, UploadId=upload_id, PartNumberMarker=marker, MaxParts=1000
            )
            found += [Part(p["PartNumber"], p["ETag"], p["Size"]) for p in page.get("Parts", [])]
            if not page.get("IsTruncated"):
                return found
            marker = int(page["NextPartNumberMarker"])

    def complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Assemble the object from the parts (number, ETag) in order."""
        listed = [{"PartNumber": number, "ETag": etag} for number, etag in sorted(parts)]
        self._call(
            "complete_multipart_upload",
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": listed},
        )

    def abort(self, key: str, upload_id: str) -> None:
        """Drop the upload and its parts; one already gone is fine."""
        try:
            self._call("abort_multipart_upload", Key=key, UploadId=upload_id)
        except MultipartNotFound:
            return

    def uploads(self, prefix: str, started_before: datetime) -> Iterator[PendingUpload]:
        """Multipart uploads under `prefix` started before a time (the sweep's view)."""
        params: dict[str, Any] = {"Prefix": prefix}
        while True:
            page = self._call("list_multipart_uploads", **params)
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < started_before:
                    yield PendingUpload(upload["Key"], upload["UploadId"], upload["Initiated"])
            if not page.get("IsTruncated"):
                return
            params |= {
                "KeyMarker": page["NextKeyMarker"],
                "UploadIdMarker": page["NextUploadIdMarker"],
            }
