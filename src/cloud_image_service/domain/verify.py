"""Checks of an uploaded object's bytes: size, magic bytes, a real decode, end marker, SHA-256.

Runs on every backend, so moto (which enforces no presigned rule) is covered too.
A decompression bomb is refused from its header, before any pixel is decoded, and
every decode first reserves its pixels' memory in the process's `MemoryBudget`.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from dataclasses import dataclass
from typing import IO, BinaryIO, Literal

from PIL import Image as PILImage

from cloud_image_service.domain.budget import UNLIMITED, MemoryBudget, decoded_bytes
from cloud_image_service.domain.errors import ServiceError
from cloud_image_service.domain.formats import FORMATS, Truncated, image_end, matches, sniff
from cloud_image_service.imaging.heif import register_heif

register_heif()  # HEIC and HEIF decode through Pillow's plugin from pillow-heif

_CHUNK = 1024 * 1024
_SPOOL_IN_MEMORY = 2 * 1024 * 1024  # larger objects spill to a temporary file

# strip: keep the bytes up to the format's end marker; reject: refuse appended data;
# keep: store the object as uploaded (a phone's motion photo appends a video to its JPEG).
TrailingData = Literal["strip", "reject", "keep"]


class ImageRejected(Exception):
    """The object is not the image it claims to be; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    """What a successful check measured, of the bytes to keep (`size` of them)."""

    size: int
    width: int
    height: int
    sha256: str
    trailing_bytes_removed: int = 0


def _spool(stream: BinaryIO, max_bytes: int) -> tuple[IO[bytes], int]:
    """Copy at most max_bytes+1 bytes aside; the +1 proves an overflow."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
    size = 0
    while size <= max_bytes:
        chunk = stream.read(min(_CHUNK, max_bytes + 1 - size))
        if not chunk:
            break
        spool.write(chunk)
        size += len(chunk)
    spool.seek(0)
    return spool, size


def _sha256(spool: IO[bytes], length: int) -> str:
    digest, left = hashlib.sha256(), length
    spool.seek(0)
    while left > 0:
        chunk = spool.read(min(_CHUNK, left))
        if not chunk:
            break
        digest.update(chunk)
        left -= len(chunk)
    spool.seek(0)
    return digest.hexdigest()


def _decode(
    spool: IO[bytes], expected_format: str, max_pixels: int, budget: MemoryBudget
) -> tuple[int, int]:
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
            with budget.reserve(decoded_bytes(*image.size, image.mode)):
                try:
                    image.load()  # decodes the pixels: truncation and corrupt data fail here
                finally:
                    image.close()  # frees the pixels before the budget is handed on
    return width, height


def _describe(exc: Exception) -> str:
    text = str(exc)
    # Pillow names its file object in this message: say what it means instead.
    return "unrecognised or corrupt image data" if "cannot identify" in text else text


def _end_of_image(spool: IO[bytes], declared_type: str, size: int, trailing: TrailingData) -> int:
    """How many bytes to keep, by the `trailing` rule for data after the end marker."""
    try:
        end = image_end(spool, declared_type)
    except Truncated:
        raise ImageRejected("image data is truncated: the format's end marker is missing") from None
    if end < size and trailing == "reject":
        raise ImageRejected(f"{size - end} bytes of other data follow the image's end marker")
    return size if trailing == "keep" else end


def verify_image(
    stream: BinaryIO,
    declared_type: str,
    max_bytes: int,
    max_pixels: int,
    budget: MemoryBudget = UNLIMITED,
    trailing: TrailingData = "strip",
) -> Verified:
    """Check the object's bytes against the declared type and the limits."""
    spool, size = _spool(stream, max_bytes)
    with spool:
        if size == 0:
            raise ImageRejected("the uploaded object is empty")
        if size > max_bytes:
            raise ImageRejected(f"object is larger than the limit of {max_bytes} bytes")
        head = spool.read(64)
        if not matches(declared_type, head):
            found = sniff(head) or "not an image of an allowed type"
            raise ImageRejected(f"content does not match {declared_type}: found {found}")
        keep = _end_of_image(spool, declared_type, size, trailing)
        sha256 = _sha256(spool, keep)
        try:  # last: closing the decoded image (to free its pixels) closes the spool too
            width, height = _decode(spool, FORMATS[declared_type].pil, max_pixels, budget)
        except (ImageRejected, ServiceError):  # ServiceError: the memory budget stayed taken
            raise
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
            raise ImageRejected(f"image dimensions exceed the pixel limit of {max_pixels}") from exc
        except Exception as exc:  # Pillow raises many kinds (OSError, SyntaxError, ...)
            raise ImageRejected(f"image does not decode: {_describe(exc)}") from exc
        return Verified(keep, width, height, sha256, size - keep)
