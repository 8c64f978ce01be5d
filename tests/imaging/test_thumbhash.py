"""ThumbHash: byte-identical to the reference, and the placeholder of every Rendered.

The expected hashes come from the npm reference, `thumbhash` 0.1.1 (evanw/thumbhash),
`rgbaToThumbHash(w, h, rgba)` base64-encoded, run with node on the bytes these functions
make (`npm install thumbhash`, then a five-line script).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from cloud_image_service.imaging.thumbhash import rgba_to_thumbhash, thumbhash_of
from tests.imaging.support import encode, quadrants, render


def opaque(width: int, height: int) -> bytes:
    """Horizontal red ramp, vertical green ramp, a blue pattern; alpha 255."""
    return bytes(
        value
        for y in range(height)
        for x in range(width)
        for value in (x * 255 // (width - 1), y * 255 // (height - 1), (x * y * 7) % 256, 255)
    )


def translucent(width: int, height: int) -> bytes:
    """Colour and alpha that vary with x and y, no symmetry; alpha 0 to 255."""
    return bytes(
        value
        for y in range(height)
        for x in range(width)
        for value in (
            (x * 37 + y * 11) % 256,
            (200 - 5 * y) % 256,
            90,
            (x * x * 5 + y * 23 + 40) % 256,
        )
    )


def checker(width: int, height: int) -> bytes:
    """Red and blue squares of 4 x 4 pixels: mirror-symmetric, many coefficients exactly 0."""
    red, blue = (230, 30, 30, 255), (20, 40, 210, 255)
    return bytes(
        value
        for y in range(height)
        for x in range(width)
        for value in (red if (x // 4 + y // 4) % 2 else blue)
    )


@pytest.mark.parametrize(
    ("pixels", "width", "height", "expected"),
    [
        (opaque, 32, 24, "X/gJLZpwdndwd3d3h2h3d6CACvh3"),
        (translucent, 20, 30, "HPmFEwgIh4+IlniHj3gIiJk8RWeIavQ="),
    ],
    ids=["opaque-32x24", "translucent-20x30"],
)
def test_same_bytes_as_the_npm_reference(
    pixels: Callable[[int, int], bytes], width: int, height: int, expected: str
) -> None:
    rgba = pixels(width, height)
    assert base64.b64encode(rgba_to_thumbhash(width, height, rgba)).decode() == expected


def test_same_bytes_as_the_npm_reference_for_a_symmetric_image() -> None:
    # Mathematically zero AC coefficients land on 7.5 after scaling: the rounding then
    # depends on the last bit of the sum, so the order of the additions must be the
    # reference's (x inside y, one accumulator) for the same bytes.
    expected = "17YCFwR4eHhoR6d3h4eEgHeod3iAiAcH"
    assert base64.b64encode(rgba_to_thumbhash(16, 16, checker(16, 16))).decode() == expected


def test_larger_than_100_pixels_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        rgba_to_thumbhash(101, 10, bytes(101 * 10 * 4))


def test_thumbhash_of_downscales() -> None:
    placeholder = base64.b64decode(thumbhash_of(quadrants(600, 400)), validate=True)
    assert 5 <= len(placeholder) <= 40
    assert placeholder[4] & 0x80  # landscape


def header_flags(placeholder: str) -> tuple[bool, bool]:
    """(has alpha, landscape) from a ThumbHash's header."""
    data = base64.b64decode(placeholder, validate=True)
    assert 5 <= len(data) <= 40, len(data)
    return bool(data[2] & 0x80), bool(data[4] & 0x80)


def test_placeholder_of_an_opaque_jpeg(tmp_path: Path) -> None:
    rendered = render(tmp_path, encode(quadrants(), "JPEG"))
    assert header_flags(rendered.placeholder) == (False, True)


def test_placeholder_is_upright(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    rendered = render(tmp_path, encode(quadrants(), "JPEG", exif=exif))
    assert header_flags(rendered.placeholder) == (False, False)  # portrait, as shown


@pytest.mark.parametrize("container", ["PNG", "WEBP"])
def test_placeholder_keeps_alpha_a_jpeg_variant_flattens(tmp_path: Path, container: str) -> None:
    image = quadrants().convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize(image.size))
    data = encode(image, container, **({"lossless": True} if container == "WEBP" else {}))
    as_webp = render(tmp_path, data, "webp").placeholder
    as_jpeg = render(tmp_path, data, "jpeg").placeholder
    assert header_flags(as_webp) == (True, True)
    assert as_jpeg == as_webp
