"""The whole seed flow over real HTTP, on every backend set."""

from __future__ import annotations

import hashlib
import uuid
from urllib.parse import parse_qs, urlparse

import httpx

from tests.conftest import AppServer
from tests.images import download_url, presign, put_bytes, upload_image


def test_presign_put_list_download_delete(
    api: httpx.Client, service: AppServer, user_id: str, png: bytes
) -> None:
    upload = presign(api, user_id, tags=["cat", "pet"], filename="my cat.png")
    assert upload["upload_method"] == "PUT"
    assert upload["upload_headers"] == {"Content-Type": "image/png"}
    assert upload["status"] == "pending"
    assert "X-Amz-Signature=" in upload["upload_url"]
    assert put_bytes(upload, png).status_code == 200
    image_id = upload["image_id"]
    completed = api.post(f"/images/{image_id}/complete")
    assert completed.status_code == 200, completed.text
    assert completed.json()["status"] == "ready"

    listed = api.get("/images", params={"user_id": user_id}).json()
    assert [item["image_id"] for item in listed["items"]] == [image_id]
    assert listed["next_cursor"] is None

    download = api.get(f"/images/{image_id}/download")
    assert download.status_code == 200, download.text
    fetched = httpx.get(download.json()["download_url"], timeout=30)
    assert fetched.status_code == 200
    assert fetched.content == png
    assert fetched.headers["content-type"] == "image/png"
    assert 'filename="my cat.png"' in fetched.headers["content-disposition"]

    image = api.get(f"/images/{image_id}").json()
    assert image["size"] == len(png)
    assert image["sha256"] == hashlib.sha256(png).hexdigest()
    assert (image["width"], image["height"]) == (2, 2)
    assert image["tags"] == ["cat", "pet"]

    deleted = api.delete(f"/images/{image_id}")
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "Image deleted successfully"}
    assert service.runtime.storage.head(f"images/{image_id}") is None
    assert api.delete(f"/images/{image_id}").status_code == 404
    assert api.get(f"/images/{image_id}").status_code == 404
    assert api.get(f"/images/{image_id}/download").status_code == 404
    assert api.get("/images", params={"user_id": user_id}).json()["items"] == []


def test_seed_flow_needs_no_extra_call(api: httpx.Client, user_id: str, png: bytes) -> None:
    upload = upload_image(api, user_id, png)
    download = api.get(f"/images/{upload['image_id']}/download")
    assert download.status_code == 200, download.text
    assert httpx.get(download.json()["download_url"], timeout=30).content == png
    assert api.get(f"/images/{upload['image_id']}").json()["status"] == "ready"


def test_object_key_comes_from_the_image_id(api: httpx.Client, user_id: str) -> None:
    upload = presign(api, user_id, filename="../../etc/passwd")
    path = urlparse(upload["upload_url"]).path
    assert path.endswith(f"/uploads/{upload['image_id']}")  # never the served key
    assert uuid.UUID(upload["image_id"]).version == 4


def test_download_before_upload_is_409(api: httpx.Client, user_id: str) -> None:
    upload = presign(api, user_id)
    response = api.get(f"/images/{upload['image_id']}/download")
    assert response.status_code == 409
    assert "upload" in response.json()["message"]


def test_download_url_forces_type_and_disposition(
    api: httpx.Client, user_id: str, png: bytes
) -> None:
    upload = upload_image(api, user_id, png, filename="Käse.png")
    url = download_url(api, upload["image_id"])
    query = parse_qs(urlparse(url).query)
    assert query["response-content-type"] == ["image/png"]
    disposition = query["response-content-disposition"][0]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''K%C3%A4se.png" in disposition


def test_inline_disposition_on_request(api: httpx.Client, user_id: str, png: bytes) -> None:
    upload = upload_image(api, user_id, png)
    url = api.get(
        f"/images/{upload['image_id']}/download", params={"disposition": "inline"}
    ).json()["download_url"]
    disposition = parse_qs(urlparse(url).query)["response-content-disposition"][0]
    assert disposition.startswith("inline;")
    assert f"{upload['image_id']}.png" in disposition


def test_health_and_ready(api: httpx.Client) -> None:
    assert api.get("/health").json() == {"status": "ok"}
    ready = api.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"s3": "ok", "dynamodb": "ok"}}


def test_swagger_ui_and_openapi(api: httpx.Client) -> None:
    assert "swagger-ui" in api.get("/docs").text.lower()
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/images/upload", "/images", "/images/{image_id}/download"} <= set(paths)
