"""Test helpers: real image bytes and the upload flow over HTTP."""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable
from typing import Any

import httpx


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG, made without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x10\x80\xf0" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def presign(api: httpx.Client, user_id: str, **extra: Any) -> dict[str, Any]:
    """POST /images/upload; asserts 201."""
    body = {"user_id": user_id, "content_type": "image/png"} | extra
    response = api.post("/images/upload", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def put_bytes(upload: dict[str, Any], data: bytes, **headers: str) -> httpx.Response:
    """A real HTTP PUT of `data` to the presigned URL, with the headers it asks for."""
    sent = upload["upload_headers"] | headers
    return httpx.put(upload["upload_url"], content=data, headers=sent, timeout=30)


def upload_image(api: httpx.Client, user_id: str, data: bytes, **extra: Any) -> dict[str, Any]:
    """Presign and PUT; returns the presign response."""
    upload = presign(api, user_id, **extra)
    response = put_bytes(upload, data)
    assert response.status_code == 200, response.text
    return upload


def settled(send: Callable[[], httpx.Response], attempts: int = 20) -> httpx.Response:
    """The answer once no other verifier holds the image.

    A 409 `verification_in_progress` (the upload event's worker verifies it right now) is
    retried after its Retry-After, as the API asks clients to.
    """
    response = send()
    for _ in range(attempts):
        if response.status_code != 409 or response.json()["code"] != "verification_in_progress":
            break
        time.sleep(int(response.headers.get("Retry-After", "1")))
        response = send()
    return response


def complete(api: httpx.Client, image_id: str) -> httpx.Response:
    """POST /images/{id}/complete, retried while another verifier holds it."""
    return settled(lambda: api.post(f"/images/{image_id}/complete"))


def download_url(api: httpx.Client, image_id: str) -> str:
    """The presigned GET of an image (asserts 200)."""
    response = settled(lambda: api.get(f"/images/{image_id}/download"))
    assert response.status_code == 200, response.text
    url: str = response.json()["download_url"]
    return url
