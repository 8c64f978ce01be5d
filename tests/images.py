"""Test helpers: real image bytes and the upload flow over HTTP."""

from __future__ import annotations

import struct
import zlib
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
