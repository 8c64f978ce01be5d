"""Where each format ends: data appended to an image is found, whatever the format."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from cloud_image_service.domain.formats import Truncated, image_end, sniff

APPENDED = (b"", b"PK\x03\x04" + b"zip" * 300, b"<html><script>x</script></html>")


def _noise(size: tuple[int, int] = (120, 80)) -> Image.Image:
    rng = random.Random(7)
    return Image.frombytes(
        "RGB", size, bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3))
    )


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


CASES = [
    ("PNG", "image/png", {}),
    ("JPEG", "image/jpeg", {"quality": 90}),
    ("JPEG", "image/jpeg", {"progressive": True}),
    ("JPEG", "image/jpeg", {"exif": b"Exif\x00\x00" + b"\xff\xd9" * 4}),  # an EOI inside EXIF
    ("GIF", "image/gif", {}),
    ("WEBP", "image/webp", {}),
    ("AVIF", "image/avif", {}),
]


@pytest.mark.parametrize(("fmt", "content_type", "options"), CASES)
def test_the_end_marker_is_found_whatever_follows(
    fmt: str, content_type: str, options: dict[str, object]
) -> None:
    data = _encode(_noise(), fmt, **options)
    assert sniff(data[:16]) == content_type
    for appended in APPENDED:
        assert image_end(io.BytesIO(data + appended), content_type) == len(data)


def test_animated_gif_ends_after_its_last_frame() -> None:
    frames = [_noise(), _noise().rotate(90)]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert image_end(io.BytesIO(data + b"PK\x03\x04"), "image/gif") == len(data)


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_a_cut_image_has_no_end(fmt: str, content_type: str) -> None:
    data = _encode(_noise(), fmt)
    with pytest.raises(Truncated):
        image_end(io.BytesIO(data[: len(data) // 2]), content_type)
