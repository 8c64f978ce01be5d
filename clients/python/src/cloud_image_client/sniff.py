"""The Content-Type of an image from its first bytes, else from its file name."""

from __future__ import annotations

from pathlib import PurePath

HEAD_BYTES = 64  # enough for every signature below, `ftyp` brands included

EXTENSIONS = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".jfif": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".hif": "image/heif",
    ".heics": "image/heic-sequence",
    ".heifs": "image/heif-sequence",
}
IMAGE_SUFFIXES = frozenset(EXTENSIONS)

_AVIF = frozenset({b"avif", b"avis"})
_HEIC = frozenset({b"heic", b"heix", b"heim", b"heis"})
_HEIC_SEQUENCE = frozenset({b"hevc", b"hevx", b"hevm", b"hevs"})


def _ftyp_brands(head: bytes) -> tuple[bytes, frozenset[bytes]] | None:
    """The major brand and all brands of an ISO-BMFF file's leading `ftyp` box."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    size = min(int.from_bytes(head[0:4], "big"), len(head))
    brands = {head[8:12]}
    brands.update(head[offset : offset + 4] for offset in range(16, size - 3, 4))
    return head[8:12], frozenset(brands)


def sniff(head: bytes) -> str | None:
    """The image type the first bytes show (JPEG, PNG, GIF, WebP, AVIF, HEIC/HEIF), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    found = _ftyp_brands(head)
    if found is None:
        return None
    major, brands = found
    if brands & _AVIF:
        return "image/avif"
    if major in _HEIC:
        return "image/heic"
    if major in _HEIC_SEQUENCE:
        return "image/heic-sequence"
    if major == b"msf1":
        return "image/heif-sequence"
    if major == b"mif1" or brands & (_HEIC | {b"mif1"}):
        return "image/heic" if brands & _HEIC else "image/heif"
    return None


def from_name(name: str | None) -> str | None:
    """The image type a file name's extension says, or None."""
    if not name:
        return None
    return EXTENSIONS.get(PurePath(name).suffix.lower())


def guess_content_type(head: bytes, name: str | None = None) -> str | None:
    """The bytes' type if they show one, else the extension's; None if neither tells."""
    return sniff(head) or from_name(name)
