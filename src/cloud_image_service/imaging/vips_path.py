"""Variants with libvips (pyvips, from the `pyvips[binary]` wheel): used for PNG.

PNG has no shrink-on-load, so the whole image is decoded; libvips does it with about a
fifth less CPU and less memory than Pillow (a 4K RGBA PNG: 104 vs 120 MB). `thumbnail`
applies the EXIF orientation (PNG `eXIf`), imports an embedded profile and exports sRGB,
resizes with premultiplied alpha; `keep=NONE` writes no metadata.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

from cloud_image_service.imaging.thumbhash import INPUT_SIDE, rgba_to_thumbhash
from cloud_image_service.imaging.variants import (
    AVIF_QUALITY,
    JPEG_QUALITY,
    OUTPUT_TYPES,
    WEBP_METHOD,
    WEBP_QUALITY,
    Made,
    OutputFormat,
    Rendered,
    Reserve,
    UnsupportedImage,
    largest_first,
)

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# One thread per operation: the service runs one decode per budget slot, on its own threads.
os.environ.setdefault("VIPS_CONCURRENCY", "1")

try:
    import pyvips

    pyvips.cache_set_max(0)  # a service must not keep decoded buffers in libvips' cache
    _VIPS: Any = pyvips
except (ImportError, OSError):  # the wheel is missing or cannot load: Pillow does PNG too
    _VIPS = None


def available() -> bool:
    """Whether libvips loaded."""
    return _VIPS is not None


def handles(head: bytes) -> bool:
    """PNG only (see the module docstring)."""
    return head.startswith(_PNG_MAGIC) and head[12:16] == b"IHDR"


def _png_header(head: bytes) -> tuple[int, int, int]:
    """Width, height and bytes per decoded pixel, from the IHDR alone (no libvips probe)."""
    width, height = struct.unpack(">II", head[16:24])
    depth, colour = head[24], head[25]
    bands = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}.get(colour, 4)
    return width, height, bands * (2 if depth == 16 else 1)


def _has_profile(path: Path) -> bool:
    """Whether the PNG embeds an ICC profile (iCCP comes before the first IDAT)."""
    with path.open("rb") as file:
        start = file.read(256 * 1024)
    end = start.find(b"IDAT")
    return start.find(b"iCCP", 8, end if end > 0 else len(start)) >= 0


def _encode(image: Any, fmt: OutputFormat) -> bytes:
    keep_none = _VIPS.enums.ForeignKeep.NONE  # no EXIF, XMP, IPTC or ICC
    if image.format != "uchar":  # 16-bit to 8-bit
        image = image.colourspace("srgb" if image.bands >= 3 else "b-w")
    if image.bands < 3:
        image = image.colourspace("srgb")
    if image.hasalpha() and (fmt == "jpeg" or image[image.bands - 1].min() == 255):
        if fmt == "jpeg":
            image = image.flatten(background=[255, 255, 255])
        else:
            image = image[0 : image.bands - 1]  # opaque: drop the alpha band
    if fmt == "webp":
        data = image.webpsave_buffer(Q=WEBP_QUALITY, effort=WEBP_METHOD, keep=keep_none)
    elif fmt == "avif":
        data = image.heifsave_buffer(Q=AVIF_QUALITY, effort=2, compression="av1", keep=keep_none)
    else:
        data = image.jpegsave_buffer(Q=JPEG_QUALITY, optimize_coding=True, keep=keep_none)
    return bytes(data)


def builtin_profile(name: str) -> bytes | None:
    """An ICC profile libvips ships (`cmyk`, `p3`, `srgb`), or None without libvips."""
    if _VIPS is None:
        return None
    return bytes(_VIPS.Image.profile_load(name))


def _placeholder(image: Any) -> str:
    import base64

    if image.format != "uchar":
        image = image.colourspace("srgb" if image.bands >= 3 else "b-w")
    if image.bands < 3:
        image = image.colourspace("srgb")
    if not image.hasalpha():
        image = image.bandjoin(255)
    image = image.thumbnail_image(INPUT_SIDE, height=INPUT_SIDE, size="down")
    pixels = bytes(image.write_to_memory())
    return base64.b64encode(rgba_to_thumbhash(image.width, image.height, pixels)).decode()


def render(
    path: Path,
    head: bytes,
    sizes: dict[str, int],
    fmt: OutputFormat,
    max_pixels: int,
    reserve: Reserve,
) -> Rendered:
    """Every variant of the PNG in `path`, and its placeholder."""
    width, height, pixel_bytes = _png_header(head)
    if width * height > max_pixels:
        raise UnsupportedImage(f"image is {width}x{height}, above the pixel limit")
    order = largest_first(sizes)
    box = order[0][1]
    try:
        with reserve(width * height * pixel_bytes):
            # copy_memory: the thumbnail is read once, then every smaller variant from it.
            # Without a profile the pixels are sRGB already: no transform to pay for.
            options = {"export_profile": "srgb"} if _has_profile(path) else {}
            image = _VIPS.Image.thumbnail(
                str(path), box, height=box, size="down", **options
            ).copy_memory()
        images = {order[0][0]: image}
        for name, side in order[1:]:
            image = image.thumbnail_image(side, height=side, size="down").copy_memory()
            images[name] = image
        made = {
            name: Made(_encode(img, fmt), img.width, img.height, OUTPUT_TYPES[fmt])
            for name, img in images.items()
        }
        return Rendered(made, _placeholder(images[order[-1][0]]))
    except _VIPS.Error as exc:
        raise UnsupportedImage(str(exc).strip().splitlines()[0]) from exc
