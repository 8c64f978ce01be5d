"""Helpers of the imaging tests: inputs made with Pillow, decoding, comparison, containers."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageDraw, ImageStat

from cloud_image_service.domain.budget import UNLIMITED
from cloud_image_service.imaging import OutputFormat, Rendered, make_variants

SIZES = {"thumb": 256, "preview": 1280}  # the service's defaults
SMALL = {"thumb": 48, "preview": 120}  # for inputs where only the pipeline matters, not the size
MAX_PIXELS = 50_000_000  # the service's default cap
QUADRANTS = ((220, 30, 30), (30, 200, 40), (30, 40, 220), (230, 220, 30))  # TL, TR, BL, BR


def render(
    tmp_path: Path,
    data: bytes,
    fmt: OutputFormat = "webp",
    sizes: dict[str, int] | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Rendered:
    """`make_variants` of `data`, written to a file as the worker does."""
    path = tmp_path / "original"
    path.write_bytes(data)
    return make_variants(path, sizes or SIZES, fmt, max_pixels, UNLIMITED.reserve)


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    """The image saved as `fmt` (a Pillow format name)."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    """Open and load: the pixels, `format` and `info` of encoded bytes."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def fit(width: int, height: int, box: int) -> tuple[int, int]:
    """The size that fits in box x box, aspect kept, never upscaled (independent of src/)."""
    scale = min(box / width, box / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def mad(actual: Image.Image, expected: Image.Image) -> float:
    """Mean absolute difference (0-255) per channel; `expected` resized to `actual`'s size."""
    if expected.size != actual.size:
        expected = expected.resize(actual.size, Image.Resampling.LANCZOS)
    if expected.mode != actual.mode:
        expected = expected.convert(actual.mode)
    means = ImageStat.Stat(ImageChops.difference(actual, expected)).mean
    return sum(means) / len(means)


def quadrants(width: int = 300, height: int = 200) -> Image.Image:
    """An asymmetric test card: four colours, a white block top left, a grey ramp at the bottom.

    Each of the eight EXIF orientations moves the quadrants to a different arrangement.
    """
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    half_w, half_h = width // 2, height // 2
    boxes = [
        (0, 0, half_w, half_h),
        (half_w, 0, width, half_h),
        (0, half_h, half_w, height),
        (half_w, half_h, width, height),
    ]
    for box, colour in zip(boxes, QUADRANTS, strict=True):
        draw.rectangle(box, fill=colour)
    draw.rectangle((width // 15, height // 10, width // 3, height // 3), fill=(255, 255, 255))
    ramp = height // 8
    for x in range(width):
        draw.line((x, height - ramp, x, height), fill=(x * 255 // width,) * 3)
    return image


def png_16bit(width: int, height: int, pixels: list[tuple[int, ...]]) -> bytes:
    """A 16-bit PNG (grey, RGB or RGBA by tuple length), written by hand: Pillow cannot."""
    channels = len(pixels[0])
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for pixel in pixels[y * width : (y + 1) * width]:
            rows += struct.pack(f">{channels}H", *pixel)
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return png_file([(b"IHDR", header), (b"IDAT", zlib.compress(bytes(rows))), (b"IEND", b"")])


def png_file(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A PNG of these chunks, CRCs computed."""
    out = bytearray(b"\x89PNG\r\n\x1a\n")
    for kind, body in chunks:
        out += struct.pack(">I", len(body)) + kind + body
        out += struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return bytes(out)


def webp_chunks(data: bytes) -> list[str]:
    """The fourCCs of a WebP's RIFF chunks, in order."""
    assert (data[:4], data[8:12]) == (b"RIFF", b"WEBP"), data[:16]
    chunks, offset = [], 12
    while offset + 8 <= len(data):
        kind = data[offset : offset + 4]
        (size,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        chunks.append(kind.decode("latin-1"))
        offset += 8 + size + (size & 1)
    return chunks


def jpeg_markers(data: bytes) -> list[int]:
    """The marker codes of a JPEG's segments before the scan (0xE0 APP0, 0xE1 APP1, ...)."""
    assert data[:2] == b"\xff\xd8", data[:4]
    markers, offset = [], 2
    while offset + 4 <= len(data):
        assert data[offset] == 0xFF, f"no marker at {offset}"
        marker = data[offset + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        offset += 2 + struct.unpack(">H", data[offset + 2 : offset + 4])[0]
    return markers


def rgba_at(image: Image.Image, x: int, y: int) -> tuple[int, ...]:
    """One pixel as RGBA."""
    pixel = image.convert("RGBA").getpixel((x, y))
    assert isinstance(pixel, tuple)
    return pixel


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    """Every channel within `tolerance`."""
    return all(abs(a - b) <= tolerance for a, b in zip(actual, expected, strict=True))
