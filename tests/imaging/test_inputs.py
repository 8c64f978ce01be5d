"""`make_variants` on animations, AVIF, every size, other outputs, and the pixel cap."""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from cloud_image_service.imaging import OutputFormat, UnsupportedImage, make_variants
from tests.imaging.support import (
    SIZES,
    SMALL,
    close,
    decode,
    encode,
    fit,
    mad,
    png_file,
    quadrants,
    render,
    rgba_at,
)

# ---------------------------------------------------------------------------------- frames

FRAMES = ((230, 20, 20), (20, 230, 20), (20, 20, 230))


@pytest.mark.parametrize(
    ("container", "params"), [("GIF", {}), ("WEBP", {"lossless": True}), ("PNG", {})]
)
def test_animation_gives_its_first_frame(
    tmp_path: Path, container: str, params: dict[str, bool]
) -> None:
    frames = [Image.new("RGB", (200, 150), colour) for colour in FRAMES]
    data = encode(
        frames[0], container, save_all=True, append_images=frames[1:], duration=100, **params
    )
    assert getattr(decode(data), "n_frames", 1) == 3
    rendered = render(tmp_path, data, sizes=SMALL)
    for name, made in rendered.variants.items():
        out = decode(made.data)
        assert out.size == fit(200, 150, SMALL[name])
        assert close(rgba_at(out, out.width // 2, out.height // 2)[:3], FRAMES[0]), name


# ---------------------------------------------------------------------------------- AVIF


@pytest.mark.parametrize("orientation", [1, 6])
def test_avif_input(tmp_path: Path, orientation: int) -> None:
    card = quadrants(300, 200)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(card, "AVIF", quality=90, speed=8, exif=exif)
    rendered = render(tmp_path, data, sizes=SMALL)
    upright = card.transpose(Image.Transpose.ROTATE_270) if orientation == 6 else card
    for name, made in rendered.variants.items():
        out = decode(made.data).convert("RGB")
        assert out.size == fit(upright.width, upright.height, SMALL[name]), name
        assert mad(out, upright) < 8, name  # a wrong orientation: over 90


# ---------------------------------------------------------------------------------- sizes


def test_small_image_is_not_upscaled_but_re_encoded(tmp_path: Path) -> None:
    data = encode(quadrants(100, 80), "PNG")
    rendered = render(tmp_path, data)
    for made in rendered.variants.values():
        assert (made.width, made.height) == (100, 80)
        assert made.data != data
        assert decode(made.data).format == "WEBP"
        assert decode(made.data).size == (100, 80)


@pytest.mark.parametrize(
    ("size", "container"),
    [
        ((1000, 250), "JPEG"),
        ((250, 1000), "PNG"),
        ((1999, 1001), "JPEG"),
        # Decoded at 1/2 (`draft`): 1281 x 720, rounded up. The sizes must still be those of
        # the original's aspect, 1280 x 720, not 1280 x 719.
        ((2561, 1440), "JPEG"),
        ((2561, 1920), "JPEG"),
    ],
)
def test_aspect_ratio_is_kept(tmp_path: Path, size: tuple[int, int], container: str) -> None:
    rendered = render(tmp_path, encode(quadrants(*size), container))
    for name, box in SIZES.items():
        made = rendered.variants[name]
        assert (made.width, made.height) == fit(*size, box), name
        assert max(made.width, made.height) == min(box, max(size))
        assert decode(made.data).size == (made.width, made.height)


@pytest.mark.parametrize("fmt", ["jpeg", "avif"])
def test_other_output_formats(tmp_path: Path, fmt: OutputFormat) -> None:
    data = encode(quadrants(600, 400), "JPEG", quality=90)
    rendered = render(tmp_path, data, fmt, sizes={"thumb": 64, "preview": 300})
    assert {n: (m.width, m.height) for n, m in rendered.variants.items()} == {
        "thumb": (64, 43),
        "preview": (300, 200),
    }
    for made in rendered.variants.values():
        out = decode(made.data)
        assert out.format == fmt.upper()
        assert made.content_type == f"image/{fmt}"
        assert mad(out.convert("RGB"), quadrants(600, 400)) < 8


# ---------------------------------------------------------------------------------- the cap


@contextmanager
def refused(nbytes: int) -> Iterator[None]:
    """A memory budget that fails the test when asked: nothing may be reserved (decoded)."""
    raise AssertionError(f"reserved {nbytes} bytes: the image was about to be decoded")
    yield


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height but holds one row: decoding it would fail or explode."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = zlib.compress(b"\x00" + bytes(3 * width))
    return png_file([(b"IHDR", header), (b"IDAT", row), (b"IEND", b"")])


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real 16 x 16 JPEG whose frame header claims width x height."""
    data = bytearray(encode(Image.new("RGB", (16, 16), (200, 10, 10)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize(
    "data", [png_header_only(8000, 7000), jpeg_claiming(8000, 7000)], ids=["png", "jpeg"]
)
def test_above_the_pixel_cap_fails_before_decoding(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "original"
    path.write_bytes(data)
    started = time.perf_counter()
    with pytest.raises(UnsupportedImage, match="pixel limit"):
        make_variants(path, SIZES, "webp", 50_000_000, refused)
    assert time.perf_counter() - started < 1.0  # a decode of 56 MP takes seconds


def test_the_cap_is_inclusive(tmp_path: Path) -> None:
    data = encode(quadrants(300, 200), "PNG")
    assert render(tmp_path, data, max_pixels=60_000).variants["thumb"].width == 256
    with pytest.raises(UnsupportedImage):
        render(tmp_path, data, max_pixels=59_999)
    jpeg = encode(quadrants(300, 200), "JPEG")
    assert render(tmp_path, jpeg, max_pixels=60_000).variants["thumb"].width == 256
    with pytest.raises(UnsupportedImage):
        render(tmp_path, jpeg, max_pixels=59_999)


@pytest.mark.parametrize(
    "data", [b"not an image at all", b"\x89PNG\r\n\x1a\n" + bytes(40)], ids=["text", "png-no-ihdr"]
)
def test_not_an_image(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(UnsupportedImage):
        render(tmp_path, data)
