"""boto3 clients for every backend, and the translation of botocore failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, NoReturn, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cloud_image_service.domain.errors import BackendUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

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


# SQS long polls wait up to 20 s: the read timeout of its client must outlast the wait, or
# every empty poll ends in a timeout and a message handed to a dead connection stays
# invisible for the queue's visibility timeout.
MAX_LONG_POLL_SECONDS = 20


def client_config(timeout: float, attempts: int = 2, read_timeout: float | None = None) -> Config:
    """Short timeouts and few attempts: an outage must become a quick 503, not a hang.

    `attempts` counts every try, the first included (botocore's `total_max_attempts`;
    its `max_attempts` would add one). Worst case to a 503 on a silent store:
    attempts x timeout, plus the standard mode's jittered backoff between them.
    """
    return Config(
        connect_timeout=timeout,
        read_timeout=timeout if read_timeout is None else read_timeout,
        retries={"total_max_attempts": attempts, "mode": "standard"},
        # uvicorn serves sync routes on up to 40 threads: one pooled connection each.
        max_pool_connections=64,
    )


def s3_config(timeout: float, attempts: int = 2, *, path_style: bool) -> Config:
    """SigV4 always: boto3 would sign presigned URLs with SigV2 otherwise."""
    # Path style on custom endpoints: local stores have no DNS for virtual-hosted buckets.
    addressing: Literal["path", "virtual"] = "path" if path_style else "virtual"
    return client_config(timeout, attempts).merge(
        Config(signature_version="s3v4", s3={"addressing_style": addressing})
    )


def make_s3_client(
    session: boto3.Session, endpoint_url: str | None, timeout: float, attempts: int = 2
) -> S3Client:
    """An S3 client for the endpoint (None: AWS itself)."""
    config = s3_config(timeout, attempts, path_style=endpoint_url is not None)
    return session.client("s3", endpoint_url=endpoint_url, config=config)


def make_sqs_client(
    session: boto3.Session, endpoint_url: str | None, timeout: float, attempts: int = 2
) -> SQSClient:
    """An SQS client whose read timeout outlasts the longest long poll."""
    config = client_config(timeout, attempts, read_timeout=timeout + MAX_LONG_POLL_SECONDS)
    return session.client("sqs", endpoint_url=endpoint_url, config=config)


def make_dynamodb_client(
    session: boto3.Session, endpoint_url: str | None, timeout: float, attempts: int = 2
) -> DynamoDBClient:
    """A DynamoDB client for the endpoint (None: AWS itself)."""
    config = client_config(timeout, attempts)
    return session.client("dynamodb", endpoint_url=endpoint_url, config=config)
