"""Listing: a Query on the user index, newest first, every image exactly once."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import httpx
import pytest

from tests.images import complete, png_bytes, presign, upload_image

TOTAL = 130


def _pages(api: httpx.Client, **params: Any) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    for _ in range(100):  # bounded: a broken cursor must not loop forever
        query = {"status": "all"} | params | ({"cursor": cursor} if cursor else {})
        response = api.get("/images", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("pagination did not end")


@pytest.fixture(scope="module")
def seeded(service: Any) -> dict[str, Any]:
    """130 images of one user (every third tagged 'odd'), and a few of another."""
    with httpx.Client(base_url=service.url, timeout=30) as api:
        user = f"pager-{id(api)}"
        ids = [
            presign(api, user, tags=["odd"] if i % 3 == 0 else ["even"])["image_id"]
            for i in range(TOTAL)
        ]
        other = [presign(api, f"{user}-other", tags=["odd"])["image_id"] for _ in range(5)]
    return {"user": user, "ids": ids, "other": other}


def test_three_pages_each_image_once_newest_first(
    api: httpx.Client, seeded: dict[str, Any]
) -> None:
    pages = _pages(api, user_id=seeded["user"], limit=50)
    assert [len(page) for page in pages] == [50, 50, 30]
    items = [item for page in pages for item in page]
    assert [item["image_id"] for item in items] == list(reversed(seeded["ids"]))
    stamps = [item["created_at"] for item in items]
    assert stamps == sorted(stamps, reverse=True)
    assert {item["user_id"] for item in items} == {seeded["user"]}


def test_tag_filter_is_exact_across_pages(api: httpx.Client, seeded: dict[str, Any]) -> None:
    pages = _pages(api, user_id=seeded["user"], tag="odd", limit=10)
    found = [item["image_id"] for page in pages for item in page]
    expected = [image_id for i, image_id in enumerate(seeded["ids"]) if i % 3 == 0]
    assert found == list(reversed(expected))
    assert all(len(page) <= 10 for page in pages)


def test_default_limit_is_50(api: httpx.Client, seeded: dict[str, Any]) -> None:
    params = {"user_id": seeded["user"], "status": "pending"}
    assert len(api.get("/images", params=params).json()["items"]) == 50


def test_list_without_user_scans_every_user(api: httpx.Client, seeded: dict[str, Any]) -> None:
    pages = _pages(api, tag="odd", limit=100)
    found = {item["image_id"] for page in pages for item in page}
    assert set(seeded["other"]) <= found
    assert len(found) == sum(len(page) for page in pages)  # nothing twice


def _tamper(cursor: str) -> str:
    body, mac = cursor.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["k"]["user_id"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{forged}.{mac}"


def test_tampered_cursor_is_400(api: httpx.Client, seeded: dict[str, Any]) -> None:
    cursor = api.get(
        "/images", params={"user_id": seeded["user"], "limit": 5, "status": "all"}
    ).json()["next_cursor"]
    response = api.get(
        "/images", params={"user_id": seeded["user"], "cursor": _tamper(cursor), "status": "all"}
    )
    assert response.status_code == 400
    assert "cursor" in response.json()["message"]
    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    assert (
        api.get(
            "/images", params={"user_id": seeded["user"], "cursor": flipped, "status": "all"}
        ).status_code
        == 400
    )


def test_cursor_of_another_listing_is_400(api: httpx.Client, seeded: dict[str, Any]) -> None:
    cursor = api.get(
        "/images", params={"user_id": seeded["user"], "limit": 5, "status": "all"}
    ).json()["next_cursor"]
    response = api.get(
        "/images", params={"user_id": f"{seeded['user']}-other", "cursor": cursor, "status": "all"}
    )
    assert response.status_code == 400


def test_created_after_and_before_narrow_the_list(api: httpx.Client, user_id: str) -> None:
    made = []
    for _ in range(3):
        made.append(presign(api, user_id)["image_id"])
        time.sleep(0.01)
    stamps = [api.get(f"/images/{image_id}").json()["created_at"] for image_id in made]
    a, b, c = made

    def listed(**window: str) -> list[str]:
        params = {"user_id": user_id, "status": "all"} | window
        response = api.get("/images", params=params)
        assert response.status_code == 200, response.text
        return [image["image_id"] for image in response.json()["items"]]

    assert listed(created_after=stamps[0]) == [c, b]
    assert listed(created_before=stamps[2]) == [b, a]
    assert listed(created_after=stamps[0], created_before=stamps[2]) == [b]
    assert listed(created_after="2000-01-01T00:00:00") == [c, b, a]  # no zone: UTC
    bad = api.get("/images", params={"user_id": user_id, "created_after": "last week"})
    assert bad.status_code == 422
    assert "created_after" in bad.json()["message"]


def test_an_unknown_query_parameter_is_named(api: httpx.Client, user_id: str) -> None:
    response = api.get("/images", params={"user_id": user_id, "start_date": "2026-01-01"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_request"
    assert "start_date" in body["message"]
    assert "created_after" in body["message"]  # and says what the route takes


def test_duplicates_are_found_by_their_bytes(api: httpx.Client, user_id: str) -> None:
    data = png_bytes(7, 7)
    digest = hashlib.sha256(data).hexdigest()
    assert api.get("/images", params={"user_id": user_id, "sha256": digest}).json()["items"] == []
    first = upload_image(api, user_id, data)["image_id"]
    complete(api, first)
    second = upload_image(api, user_id, data)["image_id"]
    complete(api, second)
    other = upload_image(api, f"{user_id}-other", data)["image_id"]
    complete(api, other)
    found = api.get("/images", params={"user_id": user_id, "sha256": digest}).json()["items"]
    assert [image["image_id"] for image in found] == [second, first]  # newest first, own only
    api.delete(f"/images/{second}")
    found = api.get("/images", params={"user_id": user_id, "sha256": digest}).json()["items"]
    assert [image["image_id"] for image in found] == [first]
    no_user = api.get("/images", params={"sha256": digest})
    assert no_user.status_code == 400
    assert "user_id" in no_user.json()["message"]
    assert api.get("/images", params={"user_id": user_id, "sha256": "xyz"}).status_code == 422
