"""Python SDK of the Cloud Image Service: `Client`, `AsyncClient`, typed errors and models.

    from cloud_image_client import Client

    with Client("http://127.0.0.1:8000", token=TOKEN) as client:
        image = client.upload("cat.png", tags=["cat"])   # verified: status "ready"
        for item in client.images(tag="cat"):
            print(item.image_id, item.size)

The command line `cis` (`pip install 'cloud-image-client[cli]'`) is built on it.
"""

from cloud_image_client._core import DEFAULT_MULTIPART_THRESHOLD, ProgressCallback
from cloud_image_client._version import __version__
from cloud_image_client.aio import AsyncClient
from cloud_image_client.client import Client
from cloud_image_client.errors import (
    ApiError,
    BackendUnavailable,
    BadRequest,
    CloudImageError,
    Conflict,
    Forbidden,
    ImageRejected,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnreachable,
    StorageError,
    Unauthorized,
    UnknownContentType,
    ValidationError,
    VariantNotReady,
    VerificationInProgress,
)
from cloud_image_client.models import Image, Page, Variant
from cloud_image_client.resume import ResumeStore, UploadState, default_state_dir
from cloud_image_client.sniff import guess_content_type

__all__ = [
    "DEFAULT_MULTIPART_THRESHOLD",
    "ApiError",
    "AsyncClient",
    "BackendUnavailable",
    "BadRequest",
    "Client",
    "CloudImageError",
    "Conflict",
    "Forbidden",
    "Image",
    "ImageRejected",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "ProgressCallback",
    "RateLimited",
    "ResumeStore",
    "ServerError",
    "ServiceUnreachable",
    "StorageError",
    "Unauthorized",
    "UnknownContentType",
    "UploadState",
    "ValidationError",
    "Variant",
    "VariantNotReady",
    "VerificationInProgress",
    "__version__",
    "default_state_dir",
    "guess_content_type",
]
