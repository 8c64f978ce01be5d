"""S3 adapter: presigned URLs, HEAD, delete and bucket set-up. Every S3 call lives here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from cloud_image_service.adapters.clients import error_code, http_status, raise_unavailable
from cloud_image_service.domain.models import ObjectInfo, utcnow

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
    ) -> None:
        self.bucket = bucket
        self.client = client
        self.presign_ttl = presign_ttl
        self.presign_client = presign_client or client

    def expiry(self) -> datetime:
        """When a URL signed now stops working."""
        return utcnow() + timedelta(seconds=self.presign_ttl)

    def presign_put(self, key: str, content_type: str) -> str:
        """A PUT URL that signs the Content-Type, so S3 refuses any other type."""
        params = {"Bucket": self.bucket, "Key": key, "ContentType": content_type}
        return self._presign("put_object", params)

    def presign_get(self, key: str, content_type: str, disposition: str) -> str:
        """A GET URL that forces the stored type and a Content-Disposition on the response."""
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ResponseContentType": content_type,
            "ResponseContentDisposition": disposition,
        }
        return self._presign("get_object", params)

    def presign_post(self, key: str, content_type: str, max_bytes: int) -> dict[str, Any]:
        """A POST form whose policy pins the key, the Content-Type and the size range."""
        try:
            form = self.presign_client.generate_presigned_post(
                self.bucket,
                key,
                Fields={"Content-Type": content_type},
                Conditions=[
                    {"Content-Type": content_type},
                    ["content-length-range", 1, max_bytes],
                ],
                ExpiresIn=self.presign_ttl,
            )
        except (BotoCoreError, ClientError) as exc:
            raise_unavailable(BACKEND, exc)
        return {"url": form["url"], "fields": dict(form["fields"])}

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
        return ObjectInfo(size=response["ContentLength"], content_type=response.get("ContentType"))

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

    def objects(self, prefix: str, older_than: datetime) -> Iterator[list[str]]:
        """Keys under `prefix` last modified before `older_than`, a page (<=1000) at a time."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                contents = page.get("Contents", [])
                yield [obj["Key"] for obj in contents if obj["LastModified"] < older_than]
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

    def ensure_bucket(self, region: str, cors_origins: Sequence[str]) -> list[str]:
        """Create the bucket if absent, private, with CORS; idempotent. Returns warnings."""
        created = self._create_bucket(region)
        warnings: list[str] = []
        self._try(warnings, "block public access", self._block_public_access)
        if cors_origins:
            self._try(warnings, "set CORS", lambda: self._put_cors(cors_origins))
        self._try(warnings, "set the lifecycle rule", self._abort_incomplete_multipart)
        log.info("bucket %s %s", self.bucket, "created" if created else "already exists")
        return warnings

    def _create_bucket(self, region: str) -> bool:
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return False
        except ClientError as exc:
            if http_status(exc) != 404:
                raise_unavailable(BACKEND, exc)
        except BotoCoreError as exc:
            raise_unavailable(BACKEND, exc)
        if region == "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
            self.client.create_bucket(Bucket=self.bucket)
        else:
            self.client.create_bucket(
                Bucket=self.bucket,
                CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
            )
        return True

    def _block_public_access(self) -> None:
        self.client.put_public_access_block(
            Bucket=self.bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )

    def _abort_incomplete_multipart(self) -> None:
        # Parts of an abandoned multipart upload are billed forever unless aborted.
        self.client.put_bucket_lifecycle_configuration(
            Bucket=self.bucket,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "abort-incomplete-multipart-uploads",
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    }
                ]
            },
        )

    def notify_queue(self, queue_arn: str, prefix: str) -> list[str]:
        """Send ObjectCreated events under `prefix` to an SQS queue; unsupported: a warning."""
        warnings: list[str] = []
        config: Any = {
            "QueueConfigurations": [
                {
                    "Id": "cloud-image-service-uploads",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
                }
            ]
        }
        self._try(
            warnings,
            "wire upload events to SQS",
            lambda: self.client.put_bucket_notification_configuration(
                Bucket=self.bucket, NotificationConfiguration=config
            ),
        )
        return warnings

    def _put_cors(self, origins: Sequence[str]) -> None:
        rule = {
            "AllowedOrigins": list(origins),
            "AllowedMethods": ["GET", "PUT", "POST", "HEAD"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3600,
        }
        self.client.put_bucket_cors(
            Bucket=self.bucket,
            CORSConfiguration={"CORSRules": [rule]},  # type: ignore[list-item]
        )

    @staticmethod
    def _try(warnings: list[str], what: str, action: Callable[[], object]) -> None:
        """Some S3-compatible stores lack a bucket feature: a warning, not a failure."""
        try:
            action()
        except ClientError as exc:
            message = f"could not {what}: {error_code(exc)} (unsupported by this store?)"
            log.warning(message)
            warnings.append(message)
