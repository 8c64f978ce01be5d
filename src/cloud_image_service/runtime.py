"""Builds the adapters and the service once per process, for the chosen backend."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from PIL import Image as PILImage

from cloud_image_service.adapters.bucket_setup import BucketSetup
from cloud_image_service.adapters.clients import (
    make_dynamodb_client,
    make_s3_client,
    make_sqs_client,
)
from cloud_image_service.adapters.images_table import ImageCatalog
from cloud_image_service.adapters.keys_table import ApiKeyStore
from cloud_image_service.adapters.presign import make_presigner
from cloud_image_service.adapters.rate_counter import build_rate_limiter
from cloud_image_service.adapters.s3 import S3Storage
from cloud_image_service.adapters.s3_multipart import S3Multipart
from cloud_image_service.adapters.sqs import UploadQueue, ensure_queue
from cloud_image_service.auth.authenticator import ApiKeyAuthenticator, Authenticator
from cloud_image_service.auth.jwt_verifier import JwtVerifier
from cloud_image_service.auth.ratelimit import RateLimiter
from cloud_image_service.background.sweeper import Sweeper
from cloud_image_service.background.worker import Worker
from cloud_image_service.config import Settings
from cloud_image_service.domain.budget import MemoryBudget, return_pixel_memory_to_the_os
from cloud_image_service.domain.models import UPLOAD_PREFIX
from cloud_image_service.domain.multipart import MultipartUploads
from cloud_image_service.domain.pagination import CursorCodec
from cloud_image_service.domain.service import ImageService, Limits
from cloud_image_service.domain.variants import VariantMaker
from cloud_image_service.local.embedded import ACCESS_KEY, SECRET_KEY, EmbeddedServer
from cloud_image_service.observability.metrics import count_store_errors

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a process builds once: adapters, service and, on `embedded`, moto."""

    settings: Settings
    storage: S3Storage
    catalog: ImageCatalog
    service: ImageService
    keys: ApiKeyStore
    authenticator: Authenticator
    bucket: BucketSetup
    rate_limiter: RateLimiter | None = None
    verify_limiter: RateLimiter | None = None
    sqs: SQSClient | None = None
    multipart: MultipartUploads | None = None
    embedded: EmbeddedServer | None = None
    worker: Worker | None = None

    def init_resources(self) -> list[str]:
        """Create bucket, table, queue and event wiring if absent (idempotent); warnings."""
        settings = self.settings
        warnings = self.bucket.ensure_bucket(settings.region, settings.bucket_cors_origins)
        warnings += self.catalog.ensure_table()
        self.keys.ensure_table()  # API keys and rate-limit counters
        if self.sqs is not None:
            _, arn = ensure_queue(self.sqs, settings.queue_name, settings.bucket)
            # Uploads only: the verifier's own copies to images/ must not trigger it again.
            warnings += self.bucket.notify_queue(arn, UPLOAD_PREFIX)
        return warnings

    def make_sweeper(self) -> Sweeper:
        """The sweep, sparing objects young enough to belong to a URL still valid."""
        settings = self.settings
        return Sweeper(
            self.service,
            object_grace_seconds=settings.presign_ttl_seconds + 60,
            multipart=self.multipart,
            upload_lifetime_seconds=settings.presign_ttl_seconds + settings.pending_ttl_seconds,
        )

    def make_worker(self, wait_seconds: int = 10) -> Worker:
        """A worker: events from this runtime's queue (none when events are off), variant
        jobs, the sweep."""
        queue = None
        if self.sqs is not None:
            queue = UploadQueue.named(self.sqs, self.settings.queue_name)
        return Worker(
            self.service,
            self.make_sweeper(),
            queue,
            self.settings.sweep_interval_seconds,
            wait_seconds,
            self.service.variants,
            self.settings.variant_poll_seconds,
        )

    def start_worker(self) -> None:
        """Run the worker on threads of this process (the embedded default)."""
        self.worker = self.make_worker(wait_seconds=1)
        self.service.verifier.on_ready = self.worker.nudge  # variants at once, not in 1 s
        self.worker.start()

    def close(self) -> None:
        """Stop what the runtime started."""
        if self.worker is not None:
            self.worker.stop()
            self.worker.join(timeout=5)
        if self.embedded is not None:
            self.embedded.stop()


def _session(settings: Settings, embedded: EmbeddedServer | None) -> boto3.Session:
    if embedded is not None:
        return boto3.Session(
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=settings.region,
        )
    return boto3.Session(region_name=settings.region)  # the standard credential chain


def _cursor_codec(settings: Settings) -> CursorCodec:
    if settings.cursor_secret:
        return CursorCodec(settings.cursor_secret.encode())
    if not settings.is_development:
        log.warning(
            "CIS_CURSOR_SECRET is not set: pagination cursors are valid only on this "
            "process; set the same secret on every replica"
        )
    return CursorCodec(secrets.token_bytes(32))


def _limits(settings: Settings) -> Limits:
    return Limits(
        max_upload_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
        pending_ttl_seconds=settings.pending_ttl_seconds,
        rejected_ttl_seconds=settings.rejected_ttl_seconds,
        max_multipart_bytes=settings.max_multipart_bytes,
        trailing_data=settings.trailing_data,
        trash_days=settings.trash_days,
        variants=bool(settings.variant_specs),
    )


def _authenticator(settings: Settings, keys: ApiKeyStore) -> Authenticator:
    verifier = None
    if settings.auth_mode == "jwt":
        secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        verifier = JwtVerifier(
            secret=secret,
            jwks=settings.jwt_jwks,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            admin_claim=settings.jwt_admin_claim,
            admin_value=settings.jwt_admin_value,
            jwks_timeout=settings.aws_timeout_seconds,
        )
    api_keys = ApiKeyAuthenticator(keys) if settings.auth_mode == "api-key" else None
    return Authenticator(settings.auth_mode, verifier, api_keys)


def _bootstrap_key(runtime: Runtime) -> None:
    """On `embedded` nobody else can reach its table: mint a development admin key."""
    key_id, plaintext = runtime.keys.create("dev", admin=True)
    log.warning(
        "CIS_AUTH_MODE=api-key on embedded: development admin key for user 'dev' "
        "(id %s), gone when the process stops: X-API-Key: %s",
        key_id,
        plaintext,
    )


def _embedded(settings: Settings, attach: bool) -> EmbeddedServer | None:
    """moto for `embedded`: started here, or (an operator command) the one `serve` runs."""
    if settings.backend != "embedded":
        return None
    server = EmbeddedServer(port=settings.embedded_port)
    if not attach:
        server.start()
    return server


def build_runtime(
    settings: Settings, start_worker: bool = False, attach_embedded: bool = False
) -> Runtime:
    """Adapters for the configured backend; on `embedded`, start moto and create resources.

    `attach_embedded`: use the moto server of a running `serve` (CIS_EMBEDDED_PORT)
    instead of starting one, so that operator commands can reach its in-memory data.
    """
    return_pixel_memory_to_the_os()
    # Pillow's own decompression-bomb limit (89 MP) would refuse what CIS_MAX_PIXELS allows.
    PILImage.MAX_IMAGE_PIXELS = settings.max_pixels
    embedded = _embedded(settings, attach_embedded)
    session = _session(settings, embedded)
    local = embedded.endpoint_url if embedded else None
    timeout, attempts = settings.aws_timeout_seconds, settings.aws_max_attempts
    s3 = make_s3_client(session, local or settings.s3_endpoint_url, timeout, attempts)
    public = settings.public_s3_url
    presigner = make_s3_client(session, public, timeout, attempts) if public else s3
    signer = make_presigner(presigner, settings.bucket, session)
    storage = S3Storage(settings.bucket, s3, settings.presign_ttl_seconds, presigner, signer)
    ddb = make_dynamodb_client(session, local or settings.dynamodb_endpoint_url, timeout, attempts)
    catalog = ImageCatalog(settings.table, ddb, transactions=embedded is None)
    count_store_errors(s3, "S3")
    count_store_errors(ddb, "DynamoDB")
    sqs: SQSClient | None = None
    if settings.events_enabled:
        sqs = make_sqs_client(session, local or settings.sqs_endpoint_url, timeout, attempts)
        count_store_errors(sqs, "SQS")
    budget = MemoryBudget.megabytes(settings.verify_memory_mb, settings.verify_wait_seconds)
    variants = None
    if settings.variant_specs:
        variants = VariantMaker(
            storage,
            catalog,
            settings.variant_specs,
            settings.variant_format,
            settings.max_pixels,
            budget,
        )
    service = ImageService(
        storage, catalog, _cursor_codec(settings), _limits(settings), budget, variants
    )
    keys = ApiKeyStore(settings.keys_table, ddb)
    parts = S3Multipart(settings.bucket, s3, settings.presign_ttl_seconds, presigner)
    multipart = MultipartUploads(service, parts, settings.multipart_part_bytes)
    runtime = Runtime(
        settings,
        storage,
        catalog,
        service,
        keys,
        _authenticator(settings, keys),
        BucketSetup(settings.bucket, s3),
        build_rate_limiter(settings.rate_limit, settings.keys_table, ddb, "uploads"),
        build_rate_limiter(settings.verify_rate_limit, settings.keys_table, ddb, "verify"),
        sqs,
        multipart,
    )
    runtime.embedded = embedded
    if embedded is not None and not attach_embedded:
        runtime.init_resources()
        if settings.auth_mode == "api-key":
            _bootstrap_key(runtime)
    if start_worker:
        runtime.start_worker()
    return runtime
