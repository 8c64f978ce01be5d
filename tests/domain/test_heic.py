"""iPhone photos: HEIC and HEIF accepted, verified, kept byte for byte, and turned into
variants every browser shows. The files are made here with pillow-heif's encoder."""

from __future__ import annotations

import hashlib
import io
import struct
import time
from typing import Any

import httpx
import pillow_heif
import pytest
from PIL import Image

from tests.conftest import AppServer
from tests.images import complete, download_url, presign, put_bytes

pillow_heif.register_heif_opener(thumbnails=False)
RED, BLUE = (255, 0, 0), (0, 0, 255)


def _pattern(mode: str = "RGB") -> Image.Image:
    """600 x 400, red top-left quarter on blue: where the red lands tells the rotation."""
    image = Image.new(mode, (600, 400), BLUE if mode == "RGB" else (*BLUE, 255))
    image.paste(RED if mode == "RGB" else (*RED, 128), (0, 0, 300, 200))
    return image


def _heic(image: Image.Image, orientation: int | None = None, gps: bool = False) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation  # pillow-heif writes it as an `irot` box
    if gps:
        exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 8.0)}
    buffer = io.BytesIO()
    image.save(buffer, "HEIF", quality=85, exif=exif.tobytes() if len(exif) else None)
    return buffer.getvalue()


def _heic_10_bit() -> bytes:
    width, height = 64, 48
    pixels = b"".join(
        struct.pack("<HHH", (x * 1023 // width) << 6, (y * 1023 // height) << 6, 512 << 6)
        for y in range(height)
        for x in range(width)
    )
    buffer = io.BytesIO()
    pillow_heif.from_bytes(mode="RGB;16", size=(width, height), data=pixels).save(
        buffer, quality=90
    )
    return buffer.getvalue()


def _upload(api: httpx.Client, user_id: str, data: bytes, content_type: str) -> str:
    upload = presign(api, user_id, content_type=content_type, filename="IMG_0001.HEIC")
    assert upload["upload_form"]["fields"]["Content-Type"] == content_type  # pinned
    assert put_bytes(upload, data).status_code == 200
    image_id: str = upload["image_id"]
    return image_id


def _variants(api: httpx.Client, service: AppServer, image_id: str) -> dict[str, Any]:
    """The image once its variants are made (by the worker job where no worker runs)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        image: dict[str, Any] = api.get(f"/images/{image_id}").json()
        if image["variants"] and image["placeholder"]:
            return image
        service.runtime.make_worker().run_jobs_once()
        time.sleep(0.2)
    raise AssertionError("no variants")


def _thumb(api: httpx.Client, image_id: str) -> Image.Image:
    url = api.get(f"/images/{image_id}/download", params={"variant": "thumb"}).json()
    data = httpx.get(url["download_url"], timeout=30).content
    assert b"Exif" not in data
    assert b"GPS" not in data
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("content_type", ["image/heic", "image/heif"])
def test_an_iphone_photo_is_ready_kept_and_thumbnailed_upright(
    api: httpx.Client, service: AppServer, user_id: str, content_type: str
) -> None:
    data = _heic(_pattern(), orientation=6, gps=True)  # sideways, with a GPS position
    image_id = _upload(api, user_id, data, content_type)
    ready = complete(api, image_id).json()
    assert ready["status"] == "ready", ready
    assert (ready["width"], ready["height"]) == (400, 600)  # libheif applied its `irot`
    assert ready["sha256"] == hashlib.sha256(data).hexdigest()
    served = httpx.get(download_url(api, image_id), timeout=30)
    assert served.content == data  # the original, byte for byte
    assert served.headers["content-type"] == content_type
    image = _variants(api, service, image_id)
    assert image["variants"]["thumb"]["content_type"] == "image/webp"
    thumb = _thumb(api, image_id).convert("RGB")
    assert (thumb.width, thumb.height) == (171, 256)  # portrait: rotated once, not twice
    red = thumb.getpixel((thumb.width - 10, 10))
    assert isinstance(red, tuple)
    assert red[0] > 200 > red[2]  # orientation 6: the red corner is now top-right


def test_an_upright_heic_stays_upright(api: httpx.Client, service: AppServer, user_id: str) -> None:
    image_id = _upload(api, user_id, _heic(_pattern()), "image/heic")
    assert complete(api, image_id).json()["status"] == "ready"
    _variants(api, service, image_id)
    thumb = _thumb(api, image_id).convert("RGB")
    assert (thumb.width, thumb.height) == (256, 171)
    red = thumb.getpixel((10, 10))
    assert isinstance(red, tuple)
    assert red[0] > 200 > red[2]


def test_10_bit_and_alpha_give_8_bit_variants(
    api: httpx.Client, service: AppServer, user_id: str
) -> None:
    ten = _upload(api, user_id, _heic_10_bit(), "image/heic")
    assert complete(api, ten).json()["status"] == "ready"
    assert _thumb_after(api, service, ten).mode in ("RGB", "RGBA")
    alpha = _upload(api, user_id, _heic(_pattern("RGBA")), "image/heif")
    assert complete(api, alpha).json()["status"] == "ready"
    thumb = _thumb_after(api, service, alpha)
    assert thumb.mode == "RGBA"  # transparency kept in WebP


def _thumb_after(api: httpx.Client, service: AppServer, image_id: str) -> Image.Image:
    _variants(api, service, image_id)
    return _thumb(api, image_id)


def test_a_truncated_heic_and_a_jpeg_in_disguise_are_rejected(
    api: httpx.Client, user_id: str
) -> None:
    data = _heic(_pattern())
    cut = _upload(api, user_id, data[: len(data) * 2 // 3], "image/heic")
    rejected = complete(api, cut)
    assert rejected.status_code == 422
    assert "rejected" in rejected.json()["message"]
    buffer = io.BytesIO()
    _pattern().save(buffer, "JPEG")
    disguised = _upload(api, user_id, buffer.getvalue(), "image/heic")
    response = complete(api, disguised)
    assert response.status_code == 422
    assert "content does not match image/heic: found image/jpeg" in response.json()["message"]
