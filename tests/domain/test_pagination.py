"""The cursor codec refuses anything it did not sign for the same listing."""

from __future__ import annotations

import pytest

from cloud_image_service.domain.errors import InvalidCursor
from cloud_image_service.domain.models import ListQuery
from cloud_image_service.domain.pagination import CursorCodec

KEY = {"image_id": "i", "user_id": "u", "created_at": "2026-01-01T00:00:00.000000Z"}


def test_round_trip() -> None:
    codec, query = CursorCodec(b"secret"), ListQuery(user_id="u")
    assert codec.decode(codec.encode(KEY, query), query) == KEY


def test_other_secret_other_query_and_edits_are_refused() -> None:
    codec, query = CursorCodec(b"secret"), ListQuery(user_id="u")
    cursor = codec.encode(KEY, query)
    with pytest.raises(InvalidCursor):
        CursorCodec(b"other").decode(cursor, query)
    with pytest.raises(InvalidCursor):
        codec.decode(cursor, ListQuery(user_id="u", tag="t"))
    for broken in (cursor[1:], cursor + "x", cursor.replace(".", ""), "", "..", "%%%.%%%"):
        with pytest.raises(InvalidCursor):
            codec.decode(broken, query)
