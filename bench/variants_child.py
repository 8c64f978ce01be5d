"""The child processes of the `variants` scenario: its inputs, and one timed run each.

    python -m bench.variants_child inputs DIR           # the four inputs, one JSON line
    python -m bench.variants_child measure PIPELINE FILE  # one timed run, one JSON line

Apart from the harness on purpose: a child imports only Pillow, pyvips and the service's
`imaging` package, so its peak RSS is the pipeline's and the interpreter's. It reports that
peak itself, `VmHWM` of /proc/self/status: `ru_maxrss` from `os.wait4` would fold in the
parent's own peak, since Linux carries the forking process's high-water mark into the
child at exec. The `pillow` pipeline never loads libvips (the service's process has both
libraries loaded, as the `service` rows show): its peak is Pillow's own.
"""

from __future__ import annotations

import base64
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageDraw

from cloud_image_service.domain.budget import UNLIMITED
from cloud_image_service.imaging import Made, Rendered, pillow_path
from cloud_image_service.imaging.thumbhash import rgba_to_thumbhash
from cloud_image_service.imaging.variants import (
    OUTPUT_TYPES,
    WEBP_METHOD,
    WEBP_QUALITY,
    largest_first,
)

SIZES = {"thumb": 256, "preview": 1280}  # the service's default variants
MAX_PIXELS = 50_000_000  # the service's default cap
PIPELINES = ("service", "pillow", "pyvips")


@dataclass(frozen=True)
class Input:
    """One input of the scenario, made from a fixed seed."""

    label: str
    file: str
    width: int
    height: int


INPUTS = (
    Input("12 MP JPEG", "12mp.jpg", 4000, 3000),
    Input("50 MP JPEG", "50mp.jpg", 8660, 5773),
    Input("4K PNG with alpha", "4k_rgba.png", 3840, 2160),
    Input("20 MP AVIF", "20mp.avif", 5472, 3648),
)


# ---------------------------------------------------------------------------------- inputs


def noise(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """Uniform grey noise from `rng`: the same pixels on every machine."""
    return Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))


def channel(rng: random.Random, width: int, height: int, index: int) -> Image.Image:
    """A gradient under low- and mid-frequency noise."""
    ramp = Image.radial_gradient("L") if index == 2 else Image.linear_gradient("L")
    ramp = ramp.resize((width, height), Image.Resampling.BILINEAR)
    if index == 1:
        ramp = ramp.transpose(Image.Transpose.ROTATE_180)
    low = noise(rng, (max(2, width // 64), max(2, height // 64)))
    mid = noise(rng, (max(2, width // 6), max(2, height // 6)))
    out = Image.blend(ramp, low.resize((width, height), Image.Resampling.BICUBIC), 0.5)
    return Image.blend(out, mid.resize((width, height), Image.Resampling.BILINEAR), 0.21)


def photo(seed: int, width: int, height: int) -> Image.Image:
    """Gradients, noise, 250 hard-edged shapes and grain: compresses like a phone photo
    (12 MP at JPEG q90: about 3.7 MB)."""
    rng = random.Random(seed)
    image = Image.merge("RGB", [channel(rng, width, height, k) for k in range(3)])
    draw = ImageDraw.Draw(image)
    side = max(width, height)
    for _ in range(250):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(side // 200, side // 15)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            box = (x - r, y - r // 2, x + r, y + r // 2)
            draw.rectangle(box, outline=colour, width=max(1, r // 10))
    grain = Image.merge("RGB", [noise(rng, (width, height)) for _ in range(3)])
    return Image.blend(image, grain, 0.11)


def make_inputs(folder: Path) -> list[dict[str, Any]]:
    """The four inputs in `folder` (about 30 s, mostly the AVIF encode)."""
    made = []
    for seed, spec in enumerate(INPUTS, start=1):
        path = folder / spec.file
        image = photo(seed, spec.width, spec.height)
        if path.suffix == ".jpg":
            image.save(path, "JPEG", quality=90)
        elif path.suffix == ".avif":
            image.save(path, "AVIF", quality=70, speed=8)
        else:  # alpha: a radial falloff and a fully transparent rectangle
            size = (spec.width, spec.height)
            alpha = Image.radial_gradient("L").resize(size, Image.Resampling.BILINEAR)
            alpha = ImageChops.invert(alpha)
            hole = (spec.width // 19, spec.height // 11, spec.width * 3 // 8, spec.height * 5 // 12)
            ImageDraw.Draw(alpha).rectangle(hole, fill=0)
            image.putalpha(alpha)
            image.save(path, "PNG")
        del image
        made.append({"file": spec.file, "bytes": path.stat().st_size})
    return made


# ---------------------------------------------------------------------------------- pipelines


def vips_encode(image: Any, keep: Any) -> bytes:
    """WebP with the service's settings and `keep` (no metadata); opaque alpha dropped."""
    if image.hasalpha() and image[image.bands - 1].min() == 255:
        image = image[0 : image.bands - 1]
    return bytes(image.webpsave_buffer(Q=WEBP_QUALITY, effort=WEBP_METHOD, keep=keep))


def vips_chain(path: Path) -> Rendered:
    """libvips for any format: shrink-on-load for JPEG, `thumbnail` otherwise, then chained."""
    from cloud_image_service.imaging import vips_path

    if not vips_path.available():
        raise RuntimeError("libvips did not load (pyvips[binary])")
    import pyvips  # after vips_path: VIPS_CONCURRENCY=1 and no cache, as in the service

    with path.open("rb") as file:
        head = file.read(64)
    if vips_path.handles(head):  # what the service runs for PNG
        return vips_path.render(path, head, SIZES, "webp", MAX_PIXELS, UNLIMITED.reserve)
    header = pyvips.Image.new_from_file(str(path))  # the header only
    order = largest_first(SIZES)
    box = order[0][1]
    options: dict[str, Any] = {"height": box, "size": "down"}
    if header.get_typeof("icc-profile-data") or header.interpretation == "cmyk":
        options["export_profile"] = "srgb"
    ratio = max(header.width, header.height) / box
    if header.get("vips-loader").startswith("jpegload") and ratio >= 2:
        # `thumbnail` keeps 2x for its last resize (4000 -> 1280 decodes at full size): the
        # largest JPEG shrink that still covers the box instead.
        shrink = max(s for s in (1, 2, 4, 8) if s <= ratio)
        source = pyvips.Image.new_from_file(str(path), shrink=shrink, access="sequential")
        image = source.thumbnail_image(box, **options).copy_memory()
    else:
        image = pyvips.Image.thumbnail(str(path), box, **options).copy_memory()
    images = {order[0][0]: image}
    for name, side in order[1:]:
        image = image.thumbnail_image(side, height=side, size="down").copy_memory()
        images[name] = image
    keep = pyvips.enums.ForeignKeep.NONE
    webp = OUTPUT_TYPES["webp"]
    made = {n: Made(vips_encode(i, keep), i.width, i.height, webp) for n, i in images.items()}
    small = image if image.hasalpha() else image.bandjoin(255)
    small = small.thumbnail_image(100, height=100, size="down")
    thumbhash = rgba_to_thumbhash(small.width, small.height, bytes(small.write_to_memory()))
    return Rendered(made, base64.b64encode(thumbhash).decode())


def service(path: Path) -> Rendered:
    """What the worker runs (it imports libvips too, for PNG)."""
    from cloud_image_service.imaging import make_variants

    return make_variants(path, SIZES, "webp", MAX_PIXELS, UNLIMITED.reserve)


RUNS: dict[str, Callable[[Path], Rendered]] = {
    "service": service,
    "pillow": lambda path: pillow_path.render(path, SIZES, "webp", MAX_PIXELS, UNLIMITED.reserve),
    "pyvips": vips_chain,
}


# ---------------------------------------------------------------------------------- measure


def status_mb(field: str) -> float:
    """VmRSS, VmHWM... of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def warm_up(run: Callable[[Path], Rendered], path: Path) -> None:
    """The same pipeline on a 64 x 48 image of the same format: codecs and libraries load."""
    fmt = {".jpg": "JPEG", ".png": "PNG", ".avif": "AVIF"}[path.suffix]
    with tempfile.TemporaryDirectory(prefix="cis-bench-warm-") as folder:
        tiny = Path(folder) / f"warm{path.suffix}"
        mode = "RGBA" if fmt == "PNG" else "RGB"
        Image.new(mode, (64, 48), (10, 200, 30, 128)[: len(mode)]).save(tiny, fmt)
        run(tiny)


def measure(pipeline: str, path: Path) -> dict[str, Any]:
    """Both default variants as WebP from `path`: CPU (all threads) and wall time, peak RSS."""
    run = RUNS[pipeline]
    library = pipeline
    if pipeline == "service":  # what `make_variants` dispatches this file to
        from cloud_image_service.imaging import vips_path

        with path.open("rb") as file:
            png = vips_path.available() and vips_path.handles(file.read(64))
        library = "pyvips" if png else "pillow"
    warm_up(run, path)
    before_mb = status_mb("VmRSS")
    cpu, wall = time.process_time(), time.perf_counter()
    rendered = run(path)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "library": library,
        "cpu_ms": cpu * 1000,
        "wall_ms": wall * 1000,
        "peak_rss_mb": status_mb("VmHWM"),
        "before_rss_mb": before_mb,
        "sizes": {name: [m.width, m.height] for name, m in rendered.variants.items()},
        "bytes": {name: len(m.data) for name, m in rendered.variants.items()},
    }


def main(argv: list[str]) -> int:
    """`inputs DIR` or `measure PIPELINE FILE`; the result as one JSON line on stdout."""
    if len(argv) == 2 and argv[0] == "inputs":
        result: Any = make_inputs(Path(argv[1]))
    elif len(argv) == 3 and argv[0] == "measure" and argv[1] in RUNS:
        result = measure(argv[1], Path(argv[2]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
