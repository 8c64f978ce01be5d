"""Bucket set-up run by `init`: creation, public-access block, CORS, lifecycle, events."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cloud_image_service.adapters.clients import error_code, http_status, raise_unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

BACKEND = "S3"


class BucketSetup:
    """Creates and configures the image bucket; idempotent."""

    def __init__(self, bucket: str, client: S3Client) -> None:
        self.bucket = bucket
        self.client = client

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

    def origins_not_allowed(self, origins: Sequence[str]) -> list[str]:
        """Configured origins the bucket's CORS rules do not allow (unreadable: none)."""
        try:
            rules = self.client.get_bucket_cors(Bucket=self.bucket).get("CORSRules", [])
        except ClientError as exc:
            if error_code(exc) == "NoSuchCORSConfiguration":
                return list(origins)
            log.info("bucket CORS unreadable (%s): not checked", error_code(exc))
            return []
        except BotoCoreError as exc:
            log.info("bucket CORS unreadable (%s): not checked", exc)
            return []
        allowed = {origin for rule in rules for origin in rule.get("AllowedOrigins", [])}
        if "*" in allowed:
            return []
        return [origin for origin in origins if origin not in allowed]

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
