"""S3 adapter: presigned URLs, HEAD, delete and bucket set-up. Every S3 call lives here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from cloud_image_service.aws import error_code, http_status, raise_unavailable
from cloud_image_service.models import ObjectInfo, utcnow

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

BACKEND = "S3"
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


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
            if error_code(exc) in _MISSING or http_status(exc) == 404:
                return None
            raise_unavailable(BACKEND, exc)
        except BotoCoreError as exc:
            raise_unavailable(BACKEND, exc)
        return ObjectInfo(size=response["ContentLength"], content_type=response.get("ContentType"))

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
