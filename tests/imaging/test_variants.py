"""`make_variants`: orientation, sizes, metadata stripped, colour converted to sRGB.

Every input is made here with Pillow. The expected pixels come from Pillow alone
(`ImageOps.exif_transpose`, LANCZOS, lcms through `ImageCms`), independently of src/.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from PIL import Image, ImageCms, ImageOps

from cloud_image_service.imaging import OutputFormat
from tests.imaging.support import (
    SIZES,
    decode,
    encode,
    fit,
    jpeg_markers,
    mad,
    quadrants,
    render,
    webp_chunks,
)

ORIENTATION = 0x0112
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
PORTRAIT = {5, 6, 7, 8}  # the orientations that swap width and height


def exif_with(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif


def check_upright(out: dict[str, Image.Image], source: bytes, sizes: dict[str, int]) -> None:
    """Each variant is the source turned upright by Pillow, resized to fit its box."""
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(source))).convert("RGB")
    for name, box in sizes.items():
        image = out[name].convert("RGB")
        assert image.size == fit(upright.width, upright.height, box), name
        # A wrong transform gives over 90 here; resampling and WebP q80 2-3, up to 5.5
        # for a 64 px thumb made from the preview.
        assert mad(image, upright) < 8, name


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    data = encode(quadrants(300, 200), "JPEG", quality=95, exif=exif_with(orientation))
    boxes = {"thumb": 64, "preview": 160}
    rendered = render(tmp_path, data, sizes=boxes)
    out = {name: decode(made.data) for name, made in rendered.variants.items()}
    check_upright(out, data, boxes)
    thumb = rendered.variants["thumb"]
    assert (thumb.width, thumb.height) == ((43, 64) if orientation in PORTRAIT else (64, 43))
    assert out["thumb"].getexif().get(ORIENTATION) is None  # nothing left to rotate it twice


@pytest.mark.parametrize("orientation", [1, 6])
def test_orientation_with_the_default_sizes(tmp_path: Path, orientation: int) -> None:
    # 300 x 200 fits the preview box: the preview is the source, re-encoded and turned.
    data = encode(quadrants(300, 200), "JPEG", quality=95, exif=exif_with(orientation))
    rendered = render(tmp_path, data)
    out = {name: decode(made.data) for name, made in rendered.variants.items()}
    check_upright(out, data, SIZES)
    sizes = {name: (made.width, made.height) for name, made in rendered.variants.items()}
    if orientation == 6:
        assert sizes == {"thumb": (171, 256), "preview": (200, 300)}
    else:
        assert sizes == {"thumb": (256, 171), "preview": (300, 200)}


@pytest.mark.parametrize("orientation", [6, 7])
def test_orientation_on_the_shrink_on_load_path(tmp_path: Path, orientation: int) -> None:
    # 3000 x 2000 -> 1280: Pillow's `draft` decodes at 1/2 before the resize.
    data = encode(quadrants(3000, 2000), "JPEG", quality=90, exif=exif_with(orientation))
    rendered = render(tmp_path, data)
    out = {name: decode(made.data) for name, made in rendered.variants.items()}
    check_upright(out, data, SIZES)
    assert out["preview"].size == (853, 1280)
    assert (rendered.variants["thumb"].width, rendered.variants["thumb"].height) == (171, 256)


# ------------------------------------------------------------------------------ metadata

LEAKS = (b"Exif", b"GPS", b"LeakyCam", b"xmpmeta", b"secret comment")


def jpeg_with_metadata() -> bytes:
    """EXIF (Make, orientation, a GPS IFD), XMP, an sRGB ICC profile and a comment."""
    exif = exif_with(1)
    exif[0x010F] = "LeakyCam"  # Make
    gps = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0), 0x12: "GPS WGS-84"}
    exif.get_ifd(0x8825).update(gps)  # 0x12, the map datum: text to find in the bytes
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    data = encode(
        quadrants(),
        "JPEG",
        quality=90,
        exif=exif,
        xmp=xmp,
        icc_profile=SRGB.tobytes(),
        comment=b"secret comment",
    )
    source = decode(data)
    assert 0x8825 in source.getexif()
    assert "xmp" in source.info
    assert "icc_profile" in source.info
    assert [leak for leak in LEAKS if leak not in data] == []
    return data


@pytest.mark.parametrize("fmt", ["webp", "jpeg", "avif"])
def test_no_metadata_in_the_variants(tmp_path: Path, fmt: OutputFormat) -> None:
    rendered = render(tmp_path, jpeg_with_metadata(), fmt, sizes={"thumb": 64, "preview": 160})
    for name, made in rendered.variants.items():
        data = made.data
        assert [leak for leak in LEAKS if leak in data] == [], name
        image = decode(data)
        assert image.format == fmt.upper()
        assert made.content_type == f"image/{fmt}"
        assert not image.getexif(), name
        assert {"exif", "xmp", "icc_profile"} & set(image.info) == set(), name
        if fmt == "webp":
            assert set(webp_chunks(data)) <= {"VP8 ", "VP8L", "VP8X", "ALPH"}, name
        elif fmt == "jpeg":
            # APP0 (JFIF) only: no APP1 (EXIF, XMP), APP2 (ICC), APP13 (IPTC) or COM.
            assert {m for m in jpeg_markers(data) if m >= 0xE1} == set(), name
        else:
            # An AVIF may describe its colour with `nclx`, never with an embedded profile.
            starts = [i for i in range(len(data)) if data.startswith(b"colr", i)]
            assert all(data[i + 4 : i + 8] == b"nclx" for i in starts), name


# ------------------------------------------------------------------------------ colour


def builtin_profile(name: str) -> bytes:
    """A profile built into libvips (offline): `p3` (Display P3), `cmyk`, `srgb`."""
    pyvips = pytest.importorskip("pyvips")
    return bytes(pyvips.Operation.call("profile_load", name))


def swapped_primaries(icc: bytes) -> bytes:
    """A matrix profile with its red and green primaries (and curves) exchanged.

    Made from libvips' Display P3 by swapping the offsets of the tag table's entries: a
    red pixel in it is green in sRGB, so an unconverted variant is far off.
    """
    out = bytearray(icc)
    count = struct.unpack(">I", out[128:132])[0]
    entries = {bytes(out[132 + 12 * i : 136 + 12 * i]): 136 + 12 * i for i in range(count)}
    for first, second in ((b"rXYZ", b"gXYZ"), (b"rTRC", b"gTRC")):
        a, b = entries[first], entries[second]
        out[a : a + 8], out[b : b + 8] = out[b : b + 8], out[a : a + 8]
    out[84:100] = bytes(16)  # the profile ID (an MD5) is optional: zero means not computed
    return bytes(out)


def lcms_to_srgb(source: Image.Image, icc: bytes) -> Image.Image:
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    converted = ImageCms.profileToProfile(source, profile, SRGB, outputMode=source.mode)
    assert converted is not None
    return converted


@pytest.mark.parametrize(
    ("profile", "colour", "container", "size"),
    [
        ("p3", (230, 60, 40), "JPEG", (400, 300)),
        ("p3", (230, 60, 40), "JPEG", (3000, 2000)),  # converted after `draft`
        ("p3", (230, 60, 40), "PNG", (400, 300)),  # libvips
        ("p3", (60, 200, 80), "WEBP", (400, 300)),
        ("swapped", (220, 40, 40), "JPEG", (400, 300)),
        ("swapped", (220, 40, 40), "PNG", (400, 300)),
    ],
)
def test_embedded_profile_is_converted_to_srgb(
    tmp_path: Path,
    profile: str,
    colour: tuple[int, int, int],
    container: str,
    size: tuple[int, int],
) -> None:
    p3 = builtin_profile("p3")
    icc = swapped_primaries(p3) if profile == "swapped" else p3
    params = {"quality": 98} if container in ("JPEG", "WEBP") else {}
    data = encode(Image.new("RGB", size, colour), container, icc_profile=icc, **params)
    source = decode(data).convert("RGB")
    expected = lcms_to_srgb(source, icc)
    rendered = render(tmp_path, data, sizes={"thumb": 64, "preview": 160})
    for name, made in rendered.variants.items():
        out = decode(made.data).convert("RGB")
        assert mad(out, expected) < 3, (name, out.getpixel((5, 5)), expected.getpixel((5, 5)))
        # Unconverted: about 20 (Display P3) or 120 (swapped) away.
        assert mad(out, source) > 10, (name, out.getpixel((5, 5)), source.getpixel((5, 5)))


def test_profile_with_alpha_keeps_the_alpha(tmp_path: Path) -> None:
    icc = builtin_profile("p3")
    data = encode(Image.new("RGBA", (400, 300), (230, 60, 40, 128)), "PNG", icc_profile=icc)
    expected = lcms_to_srgb(Image.new("RGB", (1, 1), (230, 60, 40)), icc).getpixel((0, 0))
    rendered = render(tmp_path, data, sizes={"thumb": 64, "preview": 160})
    out = decode(rendered.variants["thumb"].data)
    assert out.mode == "RGBA"
    pixel = out.getpixel((32, 24))
    assert isinstance(pixel, tuple)
    assert isinstance(expected, tuple)
    assert abs(pixel[3] - 128) <= 2
    assert all(abs(a - b) <= 4 for a, b in zip(pixel[:3], expected, strict=True)), (pixel, expected)


@pytest.mark.parametrize("container", ["JPEG", "PNG"])
def test_srgb_image_is_unchanged(tmp_path: Path, container: str) -> None:
    image = quadrants()
    params = {"quality": 95} if container == "JPEG" else {}
    data = encode(image, container, icc_profile=SRGB.tobytes(), **params)
    rendered = render(tmp_path, data)
    preview = decode(rendered.variants["preview"].data).convert("RGB")
    assert preview.size == image.size
    assert mad(preview, decode(data).convert("RGB")) < 2
