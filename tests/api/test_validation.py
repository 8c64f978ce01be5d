"""Every validation rule of the API answers a 4xx JSON error that names the problem."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cloud_image_service.domain.formats import ACCEPTED_TYPES


def _post(api: httpx.Client, **body: Any) -> httpx.Response:
    return api.post("/images/upload", json={"user_id": "alice", "content_type": "image/png"} | body)


def _assert_error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "detail", "request_id"}
    assert body["request_id"] == response.headers["X-Request-ID"]
    for word in words:
        assert word in body["message"], body["message"]


@pytest.mark.parametrize("content_type", ["image/svg+xml", "text/html", "image/bmp", "", "png"])
def test_content_type_outside_the_list_names_the_allowed_ones(
    api: httpx.Client, content_type: str
) -> None:
    response = _post(api, content_type=content_type)
    _assert_error(response, 422, "content_type", *ACCEPTED_TYPES)


def test_every_allowed_content_type_is_accepted(api: httpx.Client) -> None:
    for content_type in ACCEPTED_TYPES:
        response = _post(api, content_type=content_type)
        assert response.status_code == 201, response.text
        assert response.json()["upload_headers"] == {"Content-Type": content_type}


@pytest.mark.parametrize("user_id", ["", "a" * 129, "has space", "slash/y", "ünï", "semi;colon"])
def test_bad_user_id(api: httpx.Client, user_id: str) -> None:
    _assert_error(_post(api, user_id=user_id), 422, "user_id")


@pytest.mark.parametrize("user_id", ["a", "a" * 128, "alice@example.com", "A.b_c-d"])
def test_good_user_id(api: httpx.Client, user_id: str) -> None:
    assert _post(api, user_id=user_id).status_code == 201


def test_missing_fields(api: httpx.Client) -> None:
    _assert_error(api.post("/images/upload", json={}), 422, "content_type")
    # With authentication off there is no caller to default to.
    response = api.post("/images/upload", json={"content_type": "image/png"})
    _assert_error(response, 400, "user_id")


def test_malformed_json(api: httpx.Client) -> None:
    response = api.post(
        "/images/upload", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    _assert_error(response, 422)


@pytest.mark.parametrize(
    ("tags", "word"),
    [(["t"] * 0 + [f"t{i}" for i in range(21)], "tags"), (["x" * 65], "tags"), ([""], "tags")],
)
def test_bad_tags(api: httpx.Client, tags: list[str], word: str) -> None:
    _assert_error(_post(api, tags=tags), 422, word)


def test_twenty_tags_of_64_characters_are_fine(api: httpx.Client) -> None:
    tags = [f"{i:02d}" + "x" * 62 for i in range(20)]
    assert _post(api, tags=tags).status_code == 201


def test_description_limit(api: httpx.Client) -> None:
    assert _post(api, description="d" * 2000).status_code == 201
    _assert_error(_post(api, description="d" * 2001), 422, "description")


def test_filename_keeps_only_the_base_name(api: httpx.Client) -> None:
    image_id = _post(api, filename="../dir\\evil.png").json()["image_id"]
    assert api.get(f"/images/{image_id}").json()["filename"] == "evil.png"
    _assert_error(_post(api, filename="bad\nname.png"), 422, "filename")


@pytest.mark.parametrize("image_id", ["not-a-uuid", "123", "x" * 300])
def test_non_uuid_ids_are_404(api: httpx.Client, image_id: str) -> None:
    for response in (
        api.get(f"/images/{image_id}"),
        api.get(f"/images/{image_id}/download"),
        api.delete(f"/images/{image_id}"),
    ):
        _assert_error(response, 404, "not found")


def test_unknown_uuid_is_404(api: httpx.Client) -> None:
    _assert_error(api.get("/images/00000000-0000-4000-8000-000000000000/download"), 404)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "many"])
def test_limit_bounds(api: httpx.Client, limit: str) -> None:
    _assert_error(api.get("/images", params={"limit": limit}), 422, "limit")


def test_bad_user_id_in_query(api: httpx.Client) -> None:
    _assert_error(api.get("/images", params={"user_id": "no spaces"}), 422, "user_id")


@pytest.mark.parametrize("cursor", ["garbage", "a.b", "eyJrIjp7fX0.AAAA", "." * 3])
def test_garbage_cursor_is_400(api: httpx.Client, cursor: str) -> None:
    _assert_error(api.get("/images", params={"user_id": "alice", "cursor": cursor}), 400, "cursor")


def test_unknown_route_and_method_are_json(api: httpx.Client) -> None:
    _assert_error(api.get("/nope"), 404)
    _assert_error(api.put("/images/upload"), 405)


def test_oversized_body_is_413(api: httpx.Client) -> None:
    response = _post(api, description="d" * 100_000)
    _assert_error(response, 413, "larger than")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_image_jpg_is_stored_as_image_jpeg(api: httpx.Client, user_id: str) -> None:
    response = api.post("/images/upload", json={"user_id": user_id, "content_type": "image/jpg"})
    assert response.status_code == 201, response.text
    assert response.json()["upload_headers"] == {"Content-Type": "image/jpeg"}
    image = api.get(f"/images/{response.json()['image_id']}").json()
    assert image["content_type"] == "image/jpeg"


def test_responses_with_presigned_urls_are_never_cached(api: httpx.Client, user_id: str) -> None:
    response = api.post("/images/upload", json={"user_id": user_id, "content_type": "image/png"})
    assert response.headers["Cache-Control"] == "no-store"
    assert api.get("/images", params={"user_id": user_id}).headers["Cache-Control"] == "no-store"


def test_static_assets_are_revalidated(api: httpx.Client) -> None:
    asset = api.get("/static/gallery/app.js")
    assert asset.status_code == 200
    assert asset.headers["Cache-Control"] == "no-cache"  # an upgrade reaches every browser
    again = api.get("/static/gallery/app.js", headers={"If-None-Match": asset.headers["ETag"]})
    assert again.status_code == 304
