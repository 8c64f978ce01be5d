"""What the bytes of each accepted format look like: magic numbers and where the image ends.

`image_end` finds the offset just past the format's own end marker by walking its
structure (PNG chunks to IEND, JPEG segments and entropy data to EOI, GIF blocks to
the trailer, the RIFF length of WebP, the top-level boxes of ISO-BMFF for AVIF and
HEIF). Anything after it is data appended to the image (a ZIP, an HTML page, a
phone's motion-photo video) that a decoder never looks at.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO


@dataclass(frozen=True)
class Format:
    """What the service knows of an accepted image type."""

    pil: str  # Pillow's format name
    extension: str  # of a download without a file name


FORMATS: dict[str, Format] = {
    "image/jpeg": Format("JPEG", ".jpg"),
    "image/png": Format("PNG", ".png"),
    "image/gif": Format("GIF", ".gif"),
    "image/webp": Format("WEBP", ".webp"),
    "image/avif": Format("AVIF", ".avif"),
    # iPhone photos (HEVC in HEIF) and HEIF in general; sequences give their first image.
    "image/heic": Format("HEIF", ".heic"),
    "image/heif": Format("HEIF", ".heif"),
    "image/heic-sequence": Format("HEIF", ".heics"),
    "image/heif-sequence": Format("HEIF", ".heifs"),
}
HEIF_TYPES = frozenset(t for t, f in FORMATS.items() if f.pil == "HEIF")
# ISO-BMFF `ftyp` brands (major or compatible) of HEIF images and sequences; `avif`/`avis`
# win over them (an AVIF file lists `mif1` too).
HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)
AVIF_BRANDS = frozenset({b"avif", b"avis"})
ACCEPTED_TYPES: tuple[str, ...] = tuple(FORMATS)
# Names clients send for the same types; stored under the canonical one.
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}


def canonical_type(content_type: str) -> str | None:
    """The accepted type a client's Content-Type names (case, aliases), else None."""
    normalized = content_type.strip().lower()
    normalized = ALIASES.get(normalized, normalized)
    return normalized if normalized in FORMATS else None


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_CHUNK = 64 * 1024


class Truncated(Exception):
    """The structure ends before its end marker."""


def ftyp_brands(head: bytes) -> frozenset[bytes]:
    """The major and compatible brands of an ISO-BMFF file's leading `ftyp` box."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return frozenset()
    size = min(struct.unpack(">I", head[:4])[0], len(head))
    brands = {head[8:12]}
    brands.update(head[offset : offset + 4] for offset in range(16, size - 3, 4))
    return frozenset(brands)


def matches(declared: str, head: bytes) -> bool:
    """Whether the first bytes are an image of the declared type (HEIF: any HEIF brand)."""
    found = sniff(head)
    if declared in HEIF_TYPES:
        return found == "image/heif"
    return found == declared


def sniff(head: bytes) -> str | None:
    """The image Content-Type that the first bytes show (`image/heif` for any HEIF), or None."""
    if head.startswith(_PNG_MAGIC):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    brands = ftyp_brands(head)
    if brands & AVIF_BRANDS:
        return "image/avif"
    if brands & HEIF_BRANDS:
        return "image/heif"
    return None


class _Reader:
    """Sequential reads over a seekable stream, with the position known."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        stream.seek(0)

    @property
    def offset(self) -> int:
        return self.stream.tell()

    def read(self, size: int) -> bytes:
        data = self.stream.read(size)
        if len(data) != size:
            raise Truncated
        return data

    def skip(self, size: int) -> None:
        position = self.stream.seek(size, 1)
        end = self.stream.seek(0, 2)
        if position > end:
            raise Truncated
        self.stream.seek(position)

    def byte(self) -> int:
        return self.read(1)[0]


def _png_end(reader: _Reader) -> int:
    reader.skip(len(_PNG_MAGIC))
    while True:
        length, kind = struct.unpack(">I4s", reader.read(8))
        reader.skip(length + 4)  # data and CRC
        if kind == b"IEND":
            return reader.offset


# After 0xFF inside entropy-coded data: a stuffed zero, a restart marker, or a fill byte.
_ENTROPY_CONTINUES = frozenset({0x00, 0xFF, *range(0xD0, 0xD8)})


def _jpeg_entropy_end(reader: _Reader) -> None:
    """Skip entropy-coded data, leaving the stream at the marker that ends it."""
    stream = reader.stream
    position = stream.tell()
    while True:
        stream.seek(position)
        block = stream.read(_CHUNK)
        if len(block) < 2:
            raise Truncated
        index = block.find(b"\xff")
        while index != -1 and index + 1 < len(block):
            if block[index + 1] not in _ENTROPY_CONTINUES:
                stream.seek(position + index)
                return
            index = block.find(b"\xff", index + 1)
        # A 0xFF at the very end is looked at again with the next block.
        position += len(block) - 1 if block.endswith(b"\xff") else len(block)


def _jpeg_end(reader: _Reader) -> int:
    reader.skip(2)  # SOI
    while True:
        if reader.byte() != 0xFF:
            raise Truncated  # not at a marker: corrupt
        marker = reader.byte()
        while marker == 0xFF:  # fill bytes before a marker
            marker = reader.byte()
        if marker == 0xD9:  # EOI
            return reader.offset
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xD8):
            continue  # markers without a length
        (length,) = struct.unpack(">H", reader.read(2))
        if length < 2:
            raise Truncated
        reader.skip(length - 2)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            _jpeg_entropy_end(reader)


def _gif_sub_blocks(reader: _Reader) -> None:
    while (size := reader.byte()) != 0:
        reader.skip(size)


def _gif_end(reader: _Reader) -> int:
    reader.skip(6)
    _, _, flags = struct.unpack("<HHB", reader.read(5))
    reader.skip(2)
    if flags & 0x80:
        reader.skip(3 << ((flags & 0x07) + 1))
    while True:
        introducer = reader.byte()
        if introducer == 0x3B:  # trailer
            return reader.offset
        if introducer == 0x21:  # extension: label, then sub-blocks
            reader.skip(1)
            _gif_sub_blocks(reader)
        elif introducer == 0x2C:  # image descriptor
            descriptor = reader.read(9)
            if descriptor[8] & 0x80:
                reader.skip(3 << ((descriptor[8] & 0x07) + 1))
            reader.skip(1)  # LZW minimum code size
            _gif_sub_blocks(reader)
        else:
            raise Truncated


def _webp_end(reader: _Reader) -> int:
    header = reader.read(12)
    size: int = struct.unpack("<I", header[4:8])[0]
    end = 8 + size + (size & 1)
    reader.stream.seek(0, 2)
    if reader.offset < end:
        raise Truncated
    return end


def _bmff_end(reader: _Reader) -> int:
    """End of the last well-formed top-level box (the file is nothing but boxes)."""
    total = reader.stream.seek(0, 2)
    reader.stream.seek(0)
    offset = 0
    while offset + 8 <= total:
        reader.stream.seek(offset)
        size, kind = struct.unpack(">I4s", reader.read(8))
        if size == 1:
            (size,) = struct.unpack(">Q", reader.read(8))
        elif size == 0:  # extends to the end of the file
            size = total - offset
        if size < 8 or offset + size > total or not kind.isascii() or not kind.isalnum():
            break
        offset += size
    if offset == 0:
        raise Truncated
    return offset


_ENDS = {
    "image/png": _png_end,
    "image/jpeg": _jpeg_end,
    "image/gif": _gif_end,
    "image/webp": _webp_end,
    "image/avif": _bmff_end,
} | dict.fromkeys(HEIF_TYPES, _bmff_end)


def image_end(stream: IO[bytes], content_type: str) -> int:
    """Offset just past the image's end marker; raises Truncated when there is none."""
    try:
        return _ENDS[content_type](_Reader(stream))
    except struct.error as exc:
        raise Truncated from exc
    finally:
        stream.seek(0)
