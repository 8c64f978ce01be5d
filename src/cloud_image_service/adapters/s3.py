"""S3 adapter: presigned URLs, HEAD, GET, copies, deletes, listings of the image bucket."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from cloud_image_service.adapters.clients import error_code, http_status, raise_unavailable
from cloud_image_service.adapters.presign import Presigner
from cloud_image_service.domain.models import ObjectInfo, StoredObject, utcnow

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

BACKEND = "S3"
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


def _is_missing(exc: ClientError) -> bool:
    """S3's answer for an absent key (404 on HEAD, NoSuchKey on GET)."""
    return error_code(exc) in _MISSING or http_status(exc) == 404


class S3Storage:
    """The image bucket. `presign_client` signs URLs for the host clients use."""

    def __init__(
        self,
        bucket: str,
        client: S3Client,
        presign_ttl: int,
        presign_client: S3Client | None = None,
        presigner: Presigner | None = None,
    ) -> None:
        self.bucket = bucket
        self.client = client
        self.presign_ttl = presign_ttl
        self.presign_client = presign_client or client
        self.presigner = presigner  # signs without botocore's per-call work (presign.py)

    def expiry(self) -> datetime:
        """When a URL signed now stops working."""
        return utcnow() + timedelta(seconds=self.presign_ttl)

    def presign_put(self, key: str, content_type: str) -> str:
        """A PUT URL that signs the Content-Type, so S3 refuses any other type."""
        if self.presigner is not None:
            return self.presigner.url("PUT", key, self.presign_ttl, content_type=content_type)
        params = {"Bucket": self.bucket, "Key": key, "ContentType": content_type}
        return self._presign("put_object", params)

    def presign_get(self, key: str, content_type: str, disposition: str) -> str:
        """A GET URL that forces the stored type and a Content-Disposition on the response."""
        if self.presigner is not None:
            response = {
                "response-content-disposition": disposition,
                "response-content-type": content_type,
            }
            return self.presigner.url("GET", key, self.presign_ttl, response=response)
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ResponseContentType": content_type,
            "ResponseContentDisposition": disposition,
        }
        return self._presign("get_object", params)

    def presign_post(self, key: str, content_type: str, max_bytes: int) -> dict[str, Any]:
        """A POST form whose policy pins the key, the Content-Type and the size range."""
        fields = {"Content-Type": content_type}
        conditions: list[Any] = [
            {"Content-Type": content_type},
            ["content-length-range", 1, max_bytes],
        ]
        try:
            if self.presigner is not None:
                form = self.presigner.post(key, self.presign_ttl, fields, conditions)
            else:
                form = dict(
                    self.presign_client.generate_presigned_post(
                        self.bucket,
                        key,
                        Fields=fields,
                        Conditions=conditions,
                        ExpiresIn=self.presign_ttl,
                    )
                )
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)
        # Path-style `http://host/bucket` gets its slash: SeaweedFS answers a browser's
        # preflight of `/bucket` from its global origins, not the bucket's CORS rules.
        url = form["url"] if form["url"].endswith("/") else form["url"] + "/"
        return {"url": url, "fields": dict(form["fields"])}

    def _presign(self, operation: str, params: dict[str, str]) -> str:
        try:
            return self.presign_client.generate_presigned_url(
                operation, Params=params, ExpiresIn=self.presign_ttl
            )
        except (BotoCoreError, ClientError) as exc:  # e.g. no credentials configured
            raise_unavailable(BACKEND, exc)

    def head(self, key: str) -> ObjectInfo | None:
        """Size and type of the object, or None when it does not exist."""
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise_unavailable(BACKEND, exc)
        except BotoCoreError as exc:
            raise_unavailable(BACKEND, exc)
        return ObjectInfo(
            size=response["ContentLength"],
            content_type=response.get("ContentType"),
            etag=response.get("ETag"),
        )

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO | None]:
        """The object's bytes as a stream (None when it does not exist)."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if _is_missing(exc):
                yield None
                return
            raise_unavailable(BACKEND, exc)
        except BotoCoreError as exc:
            raise_unavailable(BACKEND, exc)
        try:
            yield body  # type: ignore[misc]
        finally:
            body.close()

    def objects(self, prefix: str, older_than: datetime) -> Iterator[list[StoredObject]]:
        """Objects under `prefix` last modified before `older_than`, a page (<=1000) at a time."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                yield [
                    StoredObject(obj["Key"], obj["Size"], obj["LastModified"])
                    for obj in page.get("Contents", [])
                    if obj["LastModified"] < older_than
                ]
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)

    def copy(self, source: str, dest: str, content_type: str, if_match: str | None) -> bool:
        """Server-side copy with only the headers we set; False if `source` changed or went.

        REPLACE drops whatever the uploader sent with its PUT (Content-Encoding,
        Cache-Control, ...): a served object carries the service's headers only.
        """
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": dest,
            "CopySource": {"Bucket": self.bucket, "Key": source},
            "MetadataDirective": "REPLACE",
            "ContentType": content_type,
        }
        if if_match is not None:
            params["CopySourceIfMatch"] = if_match
        try:
            self.client.copy_object(**params)
        except ClientError as exc:
            if _is_missing(exc) or error_code(exc) == "PreconditionFailed":
                return False
            raise_unavailable(BACKEND, exc)
        except BotoCoreError as exc:
            raise_unavailable(BACKEND, exc)
        return True

    def truncate(self, key: str, length: int, content_type: str) -> None:
        """Keep only the first `length` bytes of an object, copied inside S3 (one ranged part)."""
        try:
            upload = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type
            )["UploadId"]
            try:
                part = self.client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload,
                    PartNumber=1,
                    CopySource={"Bucket": self.bucket, "Key": key},
                    CopySourceRange=f"bytes=0-{length - 1}",
                )
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload,
                    MultipartUpload={
                        "Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]
                    },
                )
            except (BotoCoreError, ClientError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
                raise
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write an object the service made itself (a variant)."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)

    def delete(self, key: str) -> None:
        """Remove the object; absent already is fine (S3 DELETE is idempotent)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)

    def ping(self) -> None:
        """Raise BackendUnavailable unless the bucket answers."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)
