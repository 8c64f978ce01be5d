"""`make_variants` on colour modes and depths: CMYK, 16-bit, palette, alpha, grey."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageCms, ImageDraw

from cloud_image_service.imaging import OutputFormat
from tests.imaging.support import (
    SMALL,
    close,
    decode,
    encode,
    fit,
    mad,
    png_16bit,
    quadrants,
    render,
    rgba_at,
)

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


# ---------------------------------------------------------------------------------- CMYK


def cmyk_card() -> Image.Image:
    """Cyan, magenta, yellow and dark grey (K) quadrants."""
    image = Image.new("CMYK", (400, 300))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 199, 149), fill=(255, 0, 0, 0))
    draw.rectangle((200, 0, 399, 149), fill=(0, 255, 0, 0))
    draw.rectangle((0, 150, 199, 299), fill=(0, 0, 255, 0))
    draw.rectangle((200, 150, 399, 299), fill=(0, 0, 0, 200))
    return image


def test_cmyk_jpeg_without_profile(tmp_path: Path) -> None:
    data = encode(cmyk_card(), "JPEG", quality=95)
    rendered = render(tmp_path, data, sizes=SMALL)
    out = decode(rendered.variants["preview"].data)
    assert out.mode == "RGB"
    assert out.size == (120, 90)
    # Converted with libvips' built-in CMYK profile, as if the file had carried it; Pillow's
    # naive formula would give cyan (1, 255, 255), far from a printed cyan.
    pyvips = pytest.importorskip("pyvips")
    profile = ImageCms.ImageCmsProfile(
        io.BytesIO(bytes(pyvips.Operation.call("profile_load", "cmyk")))
    )
    expected = ImageCms.profileToProfile(decode(data), profile, SRGB, outputMode="RGB")
    assert expected is not None
    assert mad(out, expected.resize(out.size)) < 6
    cyan = rgba_at(out, 30, 22)[:3]
    assert cyan[0] < 60 < cyan[1] < 200 < cyan[2], cyan


def test_cmyk_jpeg_with_profile_is_converted_by_it(tmp_path: Path) -> None:
    pyvips = pytest.importorskip("pyvips")
    icc = bytes(pyvips.Operation.call("profile_load", "cmyk"))  # libvips' built-in CMYK
    data = encode(cmyk_card(), "JPEG", quality=95, icc_profile=icc)
    source = decode(data)
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    expected = ImageCms.profileToProfile(source, profile, SRGB, outputMode="RGB")
    assert expected is not None
    rendered = render(tmp_path, data, sizes=SMALL)
    out = decode(rendered.variants["preview"].data).convert("RGB")
    assert mad(out, expected) < 4  # vs the naive conversion: about 30
    assert mad(out, source.convert("RGB")) > 10


# ---------------------------------------------------------------------------------- 16-bit


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    width, height = 256, 16
    ramp = Image.new("I;16", (width, height))
    ramp.putdata([x * 65535 // (width - 1) for _ in range(height) for x in range(width)])
    data = encode(ramp, "PNG")
    assert decode(data).mode == "I;16"
    expected = Image.new("L", (width, height))
    expected.putdata([(x * 65535 // (width - 1)) >> 8 for _ in range(height) for x in range(width)])
    rendered = render(tmp_path, data, sizes=SMALL)
    for name, made in rendered.variants.items():
        out = decode(made.data).convert("L")
        assert out.size == fit(width, height, SMALL[name])
        assert mad(out, expected) < 3, name  # clipping to 255 would give about 120


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_png(tmp_path: Path, channels: int) -> None:
    width, height = 256, 16

    def pixel(x: int, y: int) -> tuple[int, ...]:
        value = x * 65535 // (width - 1)
        return (value, 65535 - value, 40000, 65535 if y < height // 2 else 30000)[:channels]

    pixels = [pixel(x, y) for y in range(height) for x in range(width)]
    data = png_16bit(width, height, pixels)
    expected = Image.new("RGBA", (width, height))
    expected.putdata([tuple(v >> 8 for v in p) + (255,) * (4 - channels) for p in pixels])
    rendered = render(tmp_path, data, sizes={"thumb": 128, "preview": 256})
    mode = "RGBA" if channels == 4 else "RGB"
    for name, made in rendered.variants.items():
        out = decode(made.data)
        assert out.mode == mode, name
        assert mad(out, expected.convert(mode)) < 3, name


# ---------------------------------------------------------------------------------- alpha


def palette_with_transparency() -> bytes:
    """Index 0 transparent (left third), then red, then blue."""
    image = Image.new("P", (300, 200), 0)
    image.putpalette([0, 0, 0, 250, 20, 20, 20, 20, 250])
    draw = ImageDraw.Draw(image)
    draw.rectangle((100, 0, 199, 199), fill=1)
    draw.rectangle((200, 0, 299, 199), fill=2)
    return encode(image, "PNG", transparency=0)


@pytest.mark.parametrize("fmt", ["webp", "jpeg"])
def test_palette_png_with_trns(tmp_path: Path, fmt: OutputFormat) -> None:
    rendered = render(tmp_path, palette_with_transparency(), fmt, sizes=SMALL)
    out = decode(rendered.variants["preview"].data)
    assert out.size == (120, 80)
    hole, red = rgba_at(out, 15, 40), rgba_at(out, 60, 40)
    if fmt == "webp":
        assert out.mode == "RGBA"
        assert hole[3] == 0
        assert red[3] == 255
    else:
        assert out.mode == "RGB"
        assert min(hole[:3]) >= 245, hole  # flattened on white
    assert close(red[:3], (250, 20, 20)), red


def rgba_card() -> Image.Image:
    """Opaque quadrants with a transparent hole top left and a half-transparent band below."""
    image = quadrants(600, 400).convert("RGBA")
    draw = ImageDraw.Draw(image)
    draw.rectangle((60, 40, 239, 159), fill=(0, 0, 0, 0))
    draw.rectangle((0, 250, 599, 299), fill=(30, 40, 220, 128))
    return image


@pytest.mark.parametrize("fmt", ["webp", "avif", "jpeg"])
def test_rgba_png(tmp_path: Path, fmt: OutputFormat) -> None:
    rendered = render(tmp_path, encode(rgba_card(), "PNG"), fmt, sizes=SMALL)
    out = decode(rendered.variants["preview"].data)
    assert out.size == (120, 80)
    hole, band, opaque = rgba_at(out, 30, 20), rgba_at(out, 60, 55), rgba_at(out, 100, 20)
    assert close(opaque, (30, 200, 40, 255)), opaque
    if fmt == "jpeg":
        assert out.mode == "RGB"
        assert min(hole[:3]) >= 240, hole
        assert close(band[:3], (142, 147, 237), 16), band  # (30, 40, 220) at 50% over white
    else:
        assert out.mode == "RGBA"
        assert hole[3] <= 8, hole
        assert abs(band[3] - 128) <= 8, band
        assert close(band[:3], (30, 40, 220), 16), band


def test_opaque_alpha_is_dropped(tmp_path: Path) -> None:
    rendered = render(tmp_path, encode(quadrants().convert("RGBA"), "PNG"), sizes=SMALL)
    assert decode(rendered.variants["thumb"].data).mode == "RGB"


# ---------------------------------------------------------------------------------- grey


def test_grayscale_jpeg(tmp_path: Path) -> None:
    ramp = Image.linear_gradient("L").resize((400, 300))
    rendered = render(tmp_path, encode(ramp, "JPEG", quality=95), sizes=SMALL)
    out = decode(rendered.variants["preview"].data)
    assert out.size == (120, 90)
    assert mad(out.convert("RGB"), ramp.convert("RGB")) < 3


def test_la_png(tmp_path: Path) -> None:
    grey = Image.linear_gradient("L").resize((400, 300)).transpose(Image.Transpose.ROTATE_90)
    image = Image.merge("LA", (grey, Image.linear_gradient("L").resize(grey.size)))
    rendered = render(tmp_path, encode(image, "PNG"), sizes=SMALL)
    out = decode(rendered.variants["preview"].data)
    assert out.mode == "RGBA"
    assert out.size == (90, 120)
    expected = image.convert("RGBA").resize(out.size, Image.Resampling.LANCZOS)
    assert mad(out.getchannel("A"), expected.getchannel("A")) < 3
    # The grey where alpha is high: WebP may change the colour of transparent pixels.
    assert close(rgba_at(out, 45, 100), rgba_at(expected, 45, 100), 6)
    assert close(rgba_at(out, 80, 110), rgba_at(expected, 80, 110), 6)
