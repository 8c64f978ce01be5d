"""Request and response bodies of the API (they become the OpenAPI schema).

Every field has a description and every body an example: the document is a contract
that generated clients and the tests read (`tests/api/test_openapi.py`).
"""

from cloud_image_service.api.schemas.common import ErrorBody, Health, Message, Readiness
from cloud_image_service.api.schemas.images import (
    DownloadResponse,
    ImageList,
    ImageOut,
    UploadForm,
    UploadRequest,
    UploadResponse,
)

__all__ = [
    "DownloadResponse",
    "ErrorBody",
    "Health",
    "ImageList",
    "ImageOut",
    "Message",
    "Readiness",
    "UploadForm",
    "UploadRequest",
    "UploadResponse",
]
