"""Settings: one pydantic-settings class, every variable prefixed `CIS_`."""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cloud_image_service.auth.ratelimit import parse_rate_limit
from cloud_image_service.domain.variants import DEFAULT_VARIANTS, VariantSpec, parse_variants
from cloud_image_service.domain.verify import TrailingData
from cloud_image_service.imaging import OutputFormat

# What a browser sends as Origin: a scheme, a host (name, IPv4 or [IPv6]) and maybe a port.
_ORIGIN = re.compile(r"^https?://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")

# 1-128 characters of A-Z a-z 0-9 . _ @ -: the API's and the CLI's rule for a user id.
USER_ID_PATTERN = r"^[A-Za-z0-9._@-]{1,128}$"

Backend = Literal["embedded", "aws"]


class Settings(BaseSettings):
    """Service configuration, read from `CIS_*` environment variables (and `.env`)."""

    model_config = SettingsConfigDict(
        env_prefix="CIS_", env_file=".env", extra="ignore", populate_by_name=True
    )

    backend: Backend = "embedded"
    region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("CIS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
        description="AWS region of the bucket and table.",
    )
    # The AWS SDKs' own endpoint variables count too, after ours.
    s3_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "CIS_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"
        ),
    )
    dynamodb_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "CIS_DYNAMODB_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"
        ),
    )
    public_s3_url: str | None = Field(
        default=None,
        description="S3 base URL written into presigned URLs when clients reach S3 under "
        "another host name than the service does (LocalStack inside compose).",
    )
    bucket: str = "cloud-image-service"
    table: str = "cloud-image-service-images"
    presign_ttl_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cursor_secret: str | None = Field(
        default=None,
        description="HMAC key for pagination cursors; share it between replicas.",
    )
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1, le=5 * 1024**3)
    max_multipart_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        le=5 * 1024**3,
        description="Largest multipart upload (checked against S3's parts before assembly).",
    )
    multipart_part_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        le=5 * 1024**3,
        description="Part size the service suggests for multipart uploads.",
    )
    max_pixels: int = Field(default=50_000_000, ge=1, description="Decompression-bomb cap.")
    pending_ttl_seconds: int = Field(
        default=3600, ge=0, description="How long past URL expiry a pending record lives."
    )
    rejected_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=0)
    events: Literal["auto", "sqs", "off"] = Field(
        default="auto",
        description="S3 upload events through SQS. auto: on for embedded and for AWS or "
        "an SQS endpoint; off when only custom S3/DynamoDB endpoints are set (SeaweedFS).",
    )
    queue_name: str = "cloud-image-service-uploads"
    sqs_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "CIS_SQS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL"
        ),
    )
    sweep_interval_seconds: float = Field(default=300, gt=0)
    worker_in_process: bool | None = Field(
        default=None, description="Run the worker inside `serve` (default: only on embedded)."
    )
    auth_mode: Literal["none", "jwt", "api-key"] = Field(
        default="none",
        description="none is for development: refused on `aws` unless CIS_ALLOW_INSECURE.",
    )
    allow_insecure: bool = False
    jwt_secret: SecretStr | None = Field(default=None, description="HS256 shared secret.")
    jwt_jwks: str | None = Field(default=None, description="JWKS file path or https URL.")
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_admin_claim: str = Field(default="scope", description="Cognito: cognito:groups.")
    jwt_admin_value: str = "admin"
    keys_table: str = "cloud-image-service-keys"
    rate_limit: str = Field(default="", description="Uploads per caller, e.g. 60/minute.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    embedded_port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port.")
    aws_timeout_seconds: float = Field(
        default=3.0, gt=0, description="Connect and read timeout of each call to a store."
    )
    aws_max_attempts: int = Field(
        default=2, ge=1, le=10, description="Tries per store call, the first one included."
    )
    s3_max_concurrency: int = Field(
        default=16,
        ge=1,
        description="Requests that may wait on S3 at once (of uvicorn's 40 threads): a "
        "stalled S3 cannot take the threads that DynamoDB-only routes need.",
    )
    ready_timeout_seconds: float = Field(
        default=2.0, gt=0, description="How long /ready waits for each store."
    )
    trailing_data: TrailingData = Field(
        default="strip",
        description="Data after an image's end marker: strip (store the image only), "
        "reject the upload, or keep it (phones' motion photos append a video).",
    )
    verify_memory_mb: int = Field(
        default=512, ge=16, description="Memory all concurrent decodes of a process share."
    )
    verify_wait_seconds: float = Field(
        default=10.0, ge=0, description="How long a decode waits for budget before a 503."
    )
    verify_rate_limit: str = Field(
        default="", description="Verifications (complete, verifying downloads) per caller."
    )
    variants: str = Field(
        default=DEFAULT_VARIANTS,
        description="Named variants made for every image, name:size (fits in size x size), "
        "comma-separated; empty: none.",
    )
    variant_format: OutputFormat = Field(default="webp", description="webp, avif or jpeg.")
    variant_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the worker looks for variants to make."
    )
    trash_days: int = Field(
        default=0, ge=0, le=3650, description="Days a deleted image stays restorable; 0: off."
    )
    log_level: str = "info"
    log_format: Literal["json", "text"] | None = Field(
        default=None,
        description="json: one object per line with request ids (the default outside "
        "embedded); text: for a terminal (the default on embedded).",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="When set, /metrics wants `Authorization: Bearer <token>`."
    )
    tracing: Literal["off", "otlp", "console"] = Field(
        default="off",
        description="OpenTelemetry spans (the otel extra): otlp to OTEL_EXPORTER_OTLP_ENDPOINT.",
    )
    metrics_port: int = Field(
        default=0, ge=0, le=65535, description="The worker's /metrics port; 0: none."
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accept `a,b` as well as a JSON list (`["a", "b"]`) from the environment."""
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                try:
                    return json.loads(value)
                except ValueError as exc:
                    raise ValueError(f"CIS_CORS_ORIGINS is not a valid JSON list: {exc}") from None
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins", mode="after")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        """Each entry is `scheme://host[:port]`, exactly what browsers send as Origin."""
        if "*" in value:
            raise ValueError(
                "CIS_CORS_ORIGINS must list origins explicitly, '*' is refused: browsers "
                "would let any site call the API with the user's token"
            )
        for origin in value:
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"CIS_CORS_ORIGINS entry {origin!r} is not an origin: write "
                    "scheme://host[:port], without a trailing slash or a path "
                    "(e.g. https://app.example.com or http://localhost:5173)"
                )
        return value

    @field_validator("variants")
    @classmethod
    def _valid_variants(cls, value: str) -> str:
        parse_variants(value)  # raises ValueError naming the bad entry
        return value

    @property
    def variant_specs(self) -> tuple[VariantSpec, ...]:
        """The parsed CIS_VARIANTS."""
        return parse_variants(self.variants)

    @field_validator("rate_limit", "verify_rate_limit")
    @classmethod
    def _valid_rate_limit(cls, value: str) -> str:
        parse_rate_limit(value)  # raises ValueError naming the expected format
        return value

    @model_validator(mode="after")
    def _jwt_needs_one_key_source(self) -> Settings:
        """jwt mode verifies with exactly one of a shared secret or a JWKS."""
        if self.auth_mode == "jwt" and (self.jwt_secret is None) == (self.jwt_jwks is None):
            raise ValueError("CIS_AUTH_MODE=jwt needs exactly one of CIS_JWT_SECRET, CIS_JWT_JWKS")
        return self

    @property
    def events_enabled(self) -> bool:
        """Whether S3 ObjectCreated events reach the worker through SQS."""
        if self.events != "auto":
            return self.events == "sqs"
        if self.backend == "embedded" or self.sqs_endpoint_url:
            return True
        return not (self.s3_endpoint_url or self.dynamodb_endpoint_url)  # AWS itself

    @property
    def run_worker_in_process(self) -> bool:
        """The embedded backend has no other process to run the worker in."""
        if self.worker_in_process is None:
            return self.backend == "embedded"
        return self.worker_in_process

    @property
    def cors_allow_loopback(self) -> bool:
        """On `embedded` with no origin set, pages on any loopback port may call the API."""
        return self.backend == "embedded" and not self.cors_origins

    @property
    def bucket_cors_origins(self) -> list[str]:
        """The bucket's CORS origins: the API's, or any loopback port on `embedded`, where a
        rule is still needed for browsers to read a part's ETag (ExposeHeaders)."""
        if self.cors_allow_loopback:
            return ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
        return list(self.cors_origins)

    @property
    def log_style(self) -> Literal["json", "text"]:
        """JSON lines for machines, text for a developer's terminal."""
        if self.log_format is not None:
            return self.log_format
        return "text" if self.backend == "embedded" else "json"

    @property
    def is_development(self) -> bool:
        """The embedded backend is development only: data lives in memory."""
        return self.backend == "embedded"
