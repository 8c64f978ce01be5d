"""Checks of an uploaded object's bytes: size, magic bytes, a real decode, SHA-256.

Runs on every backend, so moto (which enforces no presigned rule) is covered too.
A decompression bomb is refused from its header, before any pixel is decoded.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from dataclasses import dataclass
from typing import IO, BinaryIO

from PIL import Image as PILImage

# Pillow's format name for each allowed Content-Type.
PIL_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/avif": "AVIF",
}
_CHUNK = 1024 * 1024
_SPOOL_IN_MEMORY = 2 * 1024 * 1024  # larger objects spill to a temporary file


class ImageRejected(Exception):
    """The object is not the image it claims to be; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    """What a successful check measured."""

    size: int
    width: int
    height: int
    sha256: str


def sniff(head: bytes) -> str | None:
    """The image Content-Type that the first bytes show, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "image/avif"
    return None


def _spool(stream: BinaryIO, max_bytes: int) -> tuple[IO[bytes], int, str]:
    """Copy at most max_bytes+1 bytes aside, hashing them; the +1 proves an overflow."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
    digest, size = hashlib.sha256(), 0
    while size <= max_bytes:
        chunk = stream.read(min(_CHUNK, max_bytes + 1 - size))
        if not chunk:
            break
        digest.update(chunk)
        spool.write(chunk)
        size += len(chunk)
    spool.seek(0)
    return spool, size, digest.hexdigest()


def _decode(spool: IO[bytes], expected_format: str, max_pixels: int) -> tuple[int, int]:
    """Width and height after a full decode; refuses huge dimensions before decoding."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        with PILImage.open(spool, formats=[expected_format]) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRejected(
                    f"image is {width}x{height} = {width * height} pixels, "
                    f"above the limit of {max_pixels}"
                )
            image.verify()  # structure and checksums (PNG CRCs) without decoding
        spool.seek(0)
        with PILImage.open(spool, formats=[expected_format]) as image:
            if expected_format == "JPEG":
                image.draft("RGB", (max(1, width // 8), max(1, height // 8)))  # 1/8 scale
            image.load()  # decodes the pixels: truncation and corrupt data fail here
    return width, height


def _describe(exc: Exception) -> str:
    text = str(exc)
    # Pillow names its file object in this message: say what it means instead.
    return "unrecognised or corrupt image data" if "cannot identify" in text else text


def verify_image(stream: BinaryIO, declared_type: str, max_bytes: int, max_pixels: int) -> Verified:
    """Check the object's bytes against the declared type and the limits."""
    spool, size, sha256 = _spool(stream, max_bytes)
    with spool:
        if size == 0:
            raise ImageRejected("the uploaded object is empty")
        if size > max_bytes:
            raise ImageRejected(f"object is larger than the limit of {max_bytes} bytes")
        actual = sniff(spool.read(16))
        if actual != declared_type:
            found = actual or "not an image of an allowed type"
            raise ImageRejected(f"content does not match {declared_type}: found {found}")
        spool.seek(0)
        try:
            width, height = _decode(spool, PIL_FORMATS[declared_type], max_pixels)
        except ImageRejected:
            raise
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
            raise ImageRejected(f"image dimensions exceed the pixel limit of {max_pixels}") from exc
        except Exception as exc:  # Pillow raises many kinds (OSError, SyntaxError, ...)
            raise ImageRejected(f"image does not decode: {_describe(exc)}") from exc
    return Verified(size=size, width=width, height=height, sha256=sha256)
