"""HEIC and HEIF through Pillow, with pillow-heif's plugin (libheif with libde265 for HEVC).

libheif applies the `irot`/`imir` transforms while decoding and the plugin then sets the
EXIF orientation to 1, so a photo is upright once and never rotated twice. 10-bit (HDR)
images decode to 8 bits per channel. The pyvips wheel has no HEVC decoder: HEIF always
goes through Pillow.
"""

from __future__ import annotations

from functools import cache

import pillow_heif


@cache
def register_heif() -> None:
    """Let Pillow open HEIF files (once); no embedded thumbnails are read."""
    pillow_heif.register_heif_opener(thumbnails=False)
