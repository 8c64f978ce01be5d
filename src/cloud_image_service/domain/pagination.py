"""Opaque, tamper-proof pagination cursors.

A cursor carries DynamoDB's `LastEvaluatedKey` and a fingerprint of the listing it
belongs to, signed with HMAC-SHA256: a cursor that was edited, truncated or taken
from another listing is refused with 400 instead of reaching DynamoDB.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from cloud_image_service.domain.errors import InvalidCursor
from cloud_image_service.domain.models import ListQuery

_MAX_CURSOR_LENGTH = 2048


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Signs and verifies cursors with one secret (shared by every replica)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def encode(self, key: dict[str, str], query: ListQuery) -> str:
        """The cursor that resumes `query` after `key`."""
        payload = json.dumps({"k": key, "q": query.fingerprint()}, separators=(",", ":"))
        data = payload.encode()
        return f"{_b64encode(data)}.{_b64encode(self._mac(data))}"

    def decode(self, cursor: str, query: ListQuery) -> dict[str, str]:
        """The key inside a cursor made by `encode` for the same query; else InvalidCursor."""
        if len(cursor) > _MAX_CURSOR_LENGTH or cursor.count(".") != 1:
            raise InvalidCursor("cursor is malformed")
        body, mac = cursor.split(".")
        try:
            data, signature = _b64decode(body), _b64decode(mac)
        except (binascii.Error, ValueError) as exc:
            raise InvalidCursor("cursor is malformed") from exc
        if not hmac.compare_digest(signature, self._mac(data)):
            raise InvalidCursor("cursor was modified or is not from this service")
        payload = json.loads(data)
        if payload.get("q") != query.fingerprint():
            raise InvalidCursor("cursor belongs to another listing (user_id, tag or status)")
        key = payload.get("k")
        if not isinstance(key, dict):
            raise InvalidCursor("cursor is malformed")
        return {str(name): str(value) for name, value in key.items()}
