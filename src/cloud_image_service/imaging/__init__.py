"""Decoding and encoding pixels: variants (thumbnails, previews) and their placeholder.

The pipeline for each input format was chosen by measurement (bench scenario
`variants`, README "Variants"): Pillow for JPEG (shrink-on-load with `draft`), AVIF,
GIF, WebP and HEIF; libvips (pyvips) for PNG, where it takes about a fifth less CPU
and less memory. Both paths give the same result: upright, sRGB, no metadata.
"""

from cloud_image_service.imaging.variants import (
    OUTPUT_TYPES,
    Made,
    OutputFormat,
    Rendered,
    UnsupportedImage,
    make_variants,
)

__all__ = ["OUTPUT_TYPES", "Made", "OutputFormat", "Rendered", "UnsupportedImage", "make_variants"]
