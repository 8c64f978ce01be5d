"""Typed errors from the API's `code`, retries of 429, content types from bytes and names."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from cloud_image_client import (
    ApiError,
    BadRequest,
    Client,
    ImageRejected,
    NotFound,
    RateLimited,
    ServiceUnreachable,
    Unauthorized,
    UnknownContentType,
    ValidationError,
    guess_content_type,
)
from cloud_image_client.errors import error_from_response
from conftest import Service, free_port, png_bytes


def test_unknown_image_is_not_found(client: Client) -> None:
    with pytest.raises(NotFound) as caught:
        client.get(str(uuid.uuid4()))
    assert caught.value.status == 404
    assert caught.value.code == "image_not_found"
    assert isinstance(caught.value, ApiError)


def test_rejected_upload_has_the_reason(client: Client, user: str, tmp_path: Path) -> None:
    text = tmp_path / "x.png"
    text.write_text("this is text, not a picture")
    with pytest.raises(ImageRejected) as caught:
        client.upload(text, user_id=user)  # image/png from the name: the bytes say otherwise
    error = caught.value
    assert error.status == 422
    assert error.code == "validation_failed"
    assert "does not match image/png" in error.reason
    assert error.image_id
    [rejected] = client.images(user_id=user, status="rejected")
    assert rejected.image_id == error.image_id
    assert rejected.reason == error.reason


def test_unknown_content_type_is_refused_before_any_request(client: Client, user: str) -> None:
    with pytest.raises(UnknownContentType):
        client.upload(b"plain text", user_id=user)


def test_invalid_fields_and_bad_requests_are_typed(client: Client, user: str) -> None:
    with pytest.raises(ValidationError) as caught:
        client.upload(png_bytes(8), user_id=user, tags=["x" * 65])
    assert "tags" in caught.value.message
    with pytest.raises(BadRequest):
        client.upload(png_bytes(8))  # authentication off: user_id is needed


def test_rate_limited_with_retry_after(guarded: Service, user: str) -> None:
    """CIS_RATE_LIMIT=2/second: ten uploads at once, without retries: some get 429."""
    data = [png_bytes(8, seed=n) for n in range(10)]
    with Client(guarded.url, token=guarded.token(user), retries=0) as client:
        with ThreadPoolExecutor(10) as pool:
            futures = [pool.submit(client.upload, item) for item in data]
        errors = [future.exception() for future in futures]
    limited = [error for error in errors if isinstance(error, RateLimited)]
    assert limited, errors
    assert all(error.status == 429 and error.code == "too_many_requests" for error in limited)
    assert all(error.retry_after is not None and error.retry_after >= 1 for error in limited)
    assert all(error is None or isinstance(error, RateLimited) for error in errors)


def test_rate_limit_is_retried_with_backoff(guarded: Service, user: str) -> None:
    data = [png_bytes(8, seed=100 + n) for n in range(5)]
    with Client(guarded.url, token=guarded.token(user)) as client, ThreadPoolExecutor(5) as pool:
        images = list(pool.map(client.upload, data))
    assert all(image.status == "ready" for image in images)


def test_missing_or_bad_credential_is_unauthorized(guarded: Service) -> None:
    with Client(guarded.url) as anonymous, pytest.raises(Unauthorized):
        anonymous.list_page()
    with Client(guarded.url, token="not-a-jwt") as bad, pytest.raises(Unauthorized) as caught:
        bad.list_page()
    assert caught.value.status == 401


def test_unreachable_service() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, retries=1) as client, pytest.raises(ServiceUnreachable) as caught:
        client.get(str(uuid.uuid4()))
    assert str(caught.value) == f"cannot reach {url}: connection refused"


def test_error_mapping_by_code_then_status() -> None:
    def answer(status: int, body: object, headers: dict[str, str] | None = None) -> ApiError:
        return error_from_response(httpx.Response(status, json=body, headers=headers))

    busy = answer(503, {"code": "verification_busy", "message": "m"}, {"Retry-After": "2"})
    assert type(busy).__name__ == "BackendUnavailable"
    assert busy.retry_after == 2
    assert type(answer(409, {"code": "variant_not_ready"})).__name__ == "VariantNotReady"
    assert type(answer(403, {"code": "forbidden"})).__name__ == "Forbidden"
    assert type(answer(500, {})).__name__ == "ServerError"
    assert type(answer(418, "teapot")).__name__ == "ApiError"


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", None, "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", None, "image/png"),
        (b"GIF89a\x01\x00", None, "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", None, "image/webp"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", None, "image/avif"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", None, "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", None, "image/heic"),
        (b"\x00\x00\x00\x14ftypmif1\x00\x00\x00\x00mif1", None, "image/heif"),
        (b"plain text", "photo.JPG", "image/jpeg"),
        (b"plain text", "photo.heif", "image/heif"),
        (b"plain text", "notes.txt", None),
    ],
)
def test_content_type_from_bytes_then_name(head: bytes, name: str | None, expected: str) -> None:
    assert guess_content_type(head, name) == expected
