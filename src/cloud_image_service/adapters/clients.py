"""boto3 clients for every backend, and the translation of botocore failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cloud_image_service.domain.errors import BackendUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")

# Codes that mean "the store is struggling", not "your request is wrong".
_TRANSIENT_CODES = frozenset(
    {
        "ServiceUnavailable",
        "SlowDown",
        "InternalError",
        "InternalServerError",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ResourceNotFoundException",  # table missing: not initialised, or the store restarted
        "NoSuchBucket",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "ExpiredToken",
    }
)


def error_code(exc: ClientError) -> str:
    """The service's error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    """The HTTP status the store answered with."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def raise_unavailable(backend: str, exc: Exception) -> NoReturn:
    """Re-raise a store failure as the domain's 503."""
    if isinstance(exc, ClientError):
        detail = f"{error_code(exc) or 'error'} ({http_status(exc)})"
    else:
        detail = type(exc).__name__
    raise BackendUnavailable(backend, detail) from exc


def is_unavailable(exc: Exception) -> bool:
    """True for failures that are the store's (network, 5xx, throttling, misconfiguration)."""
    if isinstance(exc, BotoCoreError):
        return True
    if isinstance(exc, ClientError):
        return http_status(exc) >= 500 or error_code(exc) in _TRANSIENT_CODES
    return False


def conditional_write(backend: str, action: Callable[[], T]) -> T | None:
    """Run a conditional write: None when its condition failed, a 503 when the store did."""
    try:
        return action()
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise_unavailable(backend, exc)
    except BotoCoreError as exc:
        raise_unavailable(backend, exc)


def client_config(timeout: float) -> Config:
    """Short timeouts and few retries: an outage must become a quick 503, not a hang."""
    return Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"max_attempts": 2, "mode": "standard"},
        # uvicorn serves sync routes on up to 40 threads: one pooled connection each.
        max_pool_connections=64,
    )


def s3_config(timeout: float, *, path_style: bool) -> Config:
    """SigV4 always: boto3 would sign presigned URLs with SigV2 otherwise."""
    # Path style on custom endpoints: local stores have no DNS for virtual-hosted buckets.
    addressing: Literal["path", "virtual"] = "path" if path_style else "virtual"
    return client_config(timeout).merge(
        Config(signature_version="s3v4", s3={"addressing_style": addressing})
    )


def make_s3_client(session: boto3.Session, endpoint_url: str | None, timeout: float) -> S3Client:
    """An S3 client for the endpoint (None: AWS itself)."""
    config = s3_config(timeout, path_style=endpoint_url is not None)
    return session.client("s3", endpoint_url=endpoint_url, config=config)


def make_client(
    session: boto3.Session, service: str, endpoint_url: str | None, timeout: float
) -> Any:
    """A client of another service (SQS) for the endpoint (None: AWS itself)."""
    config = client_config(timeout)
    return session.client(service, endpoint_url=endpoint_url, config=config)  # type: ignore[call-overload]


def make_dynamodb_client(
    session: boto3.Session, endpoint_url: str | None, timeout: float
) -> DynamoDBClient:
    """A DynamoDB client for the endpoint (None: AWS itself)."""
    return session.client("dynamodb", endpoint_url=endpoint_url, config=client_config(timeout))
