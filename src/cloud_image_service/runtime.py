"""Builds the adapters and the service once per process, for the chosen backend."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

import boto3

from cloud_image_service.aws import make_dynamodb_client, make_s3_client
from cloud_image_service.catalog import ImageCatalog
from cloud_image_service.config import Settings
from cloud_image_service.embedded import ACCESS_KEY, SECRET_KEY, EmbeddedServer
from cloud_image_service.pagination import CursorCodec
from cloud_image_service.service import ImageService
from cloud_image_service.storage import S3Storage

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a process builds once: adapters, service and, on `embedded`, moto."""

    settings: Settings
    storage: S3Storage
    catalog: ImageCatalog
    service: ImageService
    embedded: EmbeddedServer | None = None

    def init_resources(self) -> list[str]:
        """Create bucket and table if absent (idempotent); returns warnings."""
        warnings = self.storage.ensure_bucket(self.settings.region, self.settings.cors_origins)
        self.catalog.ensure_table()
        return warnings

    def close(self) -> None:
        """Stop what the runtime started."""
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


def build_runtime(settings: Settings) -> Runtime:
    """Adapters for the configured backend; on `embedded`, start moto and create resources."""
    embedded = None
    if settings.backend == "embedded":
        embedded = EmbeddedServer(port=settings.embedded_port)
        embedded.start()
    session = _session(settings, embedded)
    s3_url = embedded.endpoint_url if embedded else settings.s3_endpoint_url
    ddb_url = embedded.endpoint_url if embedded else settings.dynamodb_endpoint_url
    timeout = settings.aws_timeout_seconds
    s3 = make_s3_client(session, s3_url, timeout)
    public = settings.public_s3_url
    presigner = make_s3_client(session, public, timeout) if public else s3
    storage = S3Storage(settings.bucket, s3, settings.presign_ttl_seconds, presigner)
    catalog = ImageCatalog(settings.table, make_dynamodb_client(session, ddb_url, timeout))
    service = ImageService(storage, catalog, _cursor_codec(settings))
    runtime = Runtime(settings, storage, catalog, service, embedded)
    if embedded is not None:
        runtime.init_resources()
    return runtime
