"""Variants with Pillow: JPEG (shrink-on-load), AVIF, GIF, WebP, HEIF.

In order: open (a header read), the pixel cap, the first frame of an animation, the
EXIF orientation, JPEG `draft` to the smallest DCT scale that still covers the largest
variant, the mode normalised (16-bit scaled, not clipped), the largest variant
(`reduce` + BICUBIC), the others chained (LANCZOS), then on each small image: ICC to
sRGB, the orientation, alpha handling, an encoder without metadata.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageCms, UnidentifiedImageError

from cloud_image_service.domain.budget import decoded_bytes
from cloud_image_service.imaging import vips_path
from cloud_image_service.imaging.heif import register_heif
from cloud_image_service.imaging.thumbhash import thumbhash_of
from cloud_image_service.imaging.variants import (
    OUTPUT_TYPES,
    Made,
    OutputFormat,
    Rendered,
    Reserve,
    UnsupportedImage,
    encode,
    finish,
    fit,
    largest_first,
)

_FORMATS = ["JPEG", "PNG", "GIF", "WEBP", "AVIF", "HEIF"]
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
register_heif()
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(image: Image.Image) -> int:
    """EXIF orientation (1 when absent or corrupt). HEIF comes upright with 1 already."""
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # corrupt EXIF must not fail the variants
        return 1
    return value if value in _TRANSPOSE else 1


def _normalise_mode(image: Image.Image) -> Image.Image:
    """One of RGB, RGBA, L, LA, CMYK (CMYK stays for the ICC step)."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return image
    if mode in ("P", "PA"):
        transparent = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if transparent else "RGB")
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I;16") or mode == "I":  # 16-bit grey: scale, convert("L") would clip
        wide = image if mode == "I" else image.convert("I")
        return wide.point(lambda v: v / 256, "L")
    if mode == "La":
        return image.convert("LA")
    if mode == "RGBa":
        return image.convert("RGBA")
    if mode == "F":
        return image.point(lambda v: v * 255).convert("L")
    return image.convert("RGB")  # YCbCr, LAB, HSV...


def _resize(image: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    if image.size == size:  # never upscaled: a copy, so closing the original frees nothing used
        return image.copy()
    factor = int(min(image.width / size[0], image.height / size[1]) / 2.0)
    if factor > 1:  # an integer box reduce first, leaving at least 2x for the filter
        image = image.reduce(factor)
    return image.resize(size, resample)


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """Colour from the embedded profile to sRGB (lcms, perceptual, black-point compensated)."""
    if not icc and image.mode == "CMYK":
        # A CMYK JPEG without a profile: libvips' built-in CMYK profile, not Pillow's naive
        # formula (which turns cyan into (1, 255, 255)).
        icc = vips_path.builtin_profile("cmyk")
    if not icc:
        return image.convert("RGB") if image.mode == "CMYK" else image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = (ImageCms.getProfileDescription(source) or "").strip().lower()
    except (OSError, ImageCms.PyCMSError):
        return image.convert("RGB") if image.mode == "CMYK" else image  # a broken profile
    if description.startswith("srgb") and image.mode != "CMYK":
        return image
    alpha = None
    if image.mode in ("LA", "RGBA") and source.profile.xcolor_space.strip() == "GRAY":
        alpha = image.getchannel("A")
        image = image.convert("L")
    elif image.mode == "LA":
        image = image.convert("RGBA")
    out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
    try:
        converted = ImageCms.profileToProfile(
            image,
            source,
            _SRGB,
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            outputMode=out_mode,
            flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
        )
    except ImageCms.PyCMSError:  # the profile's colour space does not match the pixels
        converted = image.convert(out_mode)
    image = converted if converted is not None else image
    if alpha is not None:
        image = image.convert("RGB")
        image.putalpha(alpha)
    return image


def _open(path: Path, max_pixels: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path, formats=_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UnsupportedImage(f"image is above the pixel limit: {exc}") from exc
        except (UnidentifiedImageError, Warning) as exc:
            raise UnsupportedImage(str(exc)) from exc
    if image.width * image.height > max_pixels:
        image.close()
        raise UnsupportedImage(f"image is {image.width}x{image.height}, above the pixel limit")
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)  # an animation gives its first frame
    return image


def render(
    path: Path, sizes: dict[str, int], fmt: OutputFormat, max_pixels: int, reserve: Reserve
) -> Rendered:
    """Every variant of the image in `path`, and its placeholder."""
    order = largest_first(sizes)
    with _open(path, max_pixels) as image:
        orientation, icc = _orientation(image), image.info.get("icc_profile")
        # Sizes from the original's dimensions: a drafted decode rounds them (2161 / 8).
        targets = {name: fit(image.width, image.height, box) for name, box in order}
        if image.format == "JPEG":  # shrink-on-load: decode at 1/2, 1/4 or 1/8 when enough
            mode = image.mode if image.mode in ("RGB", "L", "CMYK") else None
            image.draft(mode, targets[order[0][0]])
        with reserve(decoded_bytes(*image.size, image.mode)):
            source = _normalise_mode(image)
            small: dict[str, Image.Image] = {}
            for index, (name, _) in enumerate(order):
                resample = Image.Resampling.BICUBIC if index == 0 else Image.Resampling.LANCZOS
                source = _resize(source, targets[name], resample)
                small[name] = source
            del source
    made: dict[str, Made] = {}
    upright: Image.Image | None = None
    for name, _ in order:
        upright = _to_srgb(small[name], icc)
        if orientation != 1:
            upright = upright.transpose(_TRANSPOSE[orientation])
        final = finish(upright.copy(), fmt)
        made[name] = Made(encode(final, fmt), final.width, final.height, OUTPUT_TYPES[fmt])
    assert upright is not None
    # The placeholder keeps the alpha a JPEG variant flattens.
    return Rendered(made, thumbhash_of(finish(upright, "webp")))
