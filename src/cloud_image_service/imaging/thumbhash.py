"""ThumbHash: a ~25-byte placeholder an app paints, blurred, before the thumbnail arrives.

A port of Evan Wallace's reference `rgbaToThumbHash` (https://evanw.github.io/thumbhash/),
byte-identical to the npm package's output for the same pixels. The PyPI package
`thumbhash` fails on every image with alpha.
"""

from __future__ import annotations

import base64
import math

from PIL import Image

_MAX_SIDE = 100  # the format's limit
# What `thumbhash_of` feeds it: the hash keeps 7 x 7 low frequencies at most, so a 32-pixel
# image gives the same picture as a 100-pixel one, ten times faster.
INPUT_SIDE = 32


def _js_round(x: float) -> int:
    """JavaScript's Math.round (Python's round() rounds half to even)."""
    return math.floor(x + 0.5)


def _channels(
    rgba: bytes, n: int
) -> tuple[list[float], list[float], list[float], list[float], bool]:
    """Luminance, the two chroma channels and alpha, premultiplied over the average colour."""
    r, g, b, a = rgba[0::4], rgba[1::4], rgba[2::4], rgba[3::4]
    if a.count(255) == n:
        luma = [(rr + gg + bb) / 765 for rr, gg, bb in zip(r, g, b, strict=True)]
        p = [(rr + gg) / 510 - bb / 255 for rr, gg, bb in zip(r, g, b, strict=True)]
        q = [(rr - gg) / 255 for rr, gg in zip(r, g, strict=True)]
        return luma, p, q, [], False
    avg_r = avg_g = avg_b = avg_a = 0.0
    for rr, gg, bb, aa in zip(r, g, b, a, strict=True):
        alpha = aa / 255
        avg_r += alpha / 255 * rr
        avg_g += alpha / 255 * gg
        avg_b += alpha / 255 * bb
        avg_a += alpha
    if avg_a:
        avg_r, avg_g, avg_b = avg_r / avg_a, avg_g / avg_a, avg_b / avg_a
    luma, p, q, alphas = [], [], [], []
    for rr, gg, bb, aa in zip(r, g, b, a, strict=True):
        alpha = aa / 255
        red = avg_r * (1 - alpha) + alpha / 255 * rr
        green = avg_g * (1 - alpha) + alpha / 255 * gg
        blue = avg_b * (1 - alpha) + alpha / 255 * bb
        luma.append((red + green + blue) / 3)
        p.append((red + green) / 2 - blue)
        q.append(red - green)
        alphas.append(alpha)
    return luma, p, q, alphas, avg_a < n


class _Encoder:
    """The DCT of one image's channels, in the reference's order of additions.

    The order matters: a symmetric image has coefficients that land exactly on .5 once
    scaled, and which way they round depends on the last bit of the sum. Summing as
    the reference does (row by row, `value * fx * fy`) keeps the bytes identical; the
    input is at most 32 x 32 pixels, so the plain loop costs a few milliseconds.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height, self.n = width, height, width * height

    def channel(self, values: list[float], nx: int, ny: int) -> tuple[float, list[float], float]:
        """The DC term, the AC terms (scaled to 0..1) and their scale."""
        dc, ac, scale = 0.0, [], 0.0
        w, h = self.width, self.height
        for cy in range(ny):
            fys = [math.cos(math.pi / h * cy * (y + 0.5)) for y in range(h)]
            cx = 0
            while cx * ny < nx * (ny - cy):
                fx = [math.cos(math.pi / w * cx * (x + 0.5)) for x in range(w)]
                f = 0.0
                for y, fy in enumerate(fys):
                    row = y * w
                    for x in range(w):
                        f += values[x + row] * fx[x] * fy
                f /= self.n
                if cx or cy:
                    ac.append(f)
                    scale = max(scale, abs(f))
                else:
                    dc = f
                cx += 1
        if scale:
            ac = [0.5 + 0.5 / scale * v for v in ac]
        return dc, ac, scale


def rgba_to_thumbhash(width: int, height: int, rgba: bytes) -> bytes:
    """The ThumbHash of an RGBA image of at most 100 x 100 pixels."""
    if width > _MAX_SIDE or height > _MAX_SIDE:
        raise ValueError(f"{width}x{height} does not fit in {_MAX_SIDE}x{_MAX_SIDE}")
    luma, p, q, alpha, has_alpha = _channels(rgba, width * height)
    limit = 5 if has_alpha else 7
    lx = max(1, _js_round(limit * width / max(width, height)))
    ly = max(1, _js_round(limit * height / max(width, height)))
    encoder = _Encoder(width, height)
    l_dc, l_ac, l_scale = encoder.channel(luma, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = encoder.channel(p, 3, 3)
    q_dc, q_ac, q_scale = encoder.channel(q, 3, 3)
    landscape = width > height
    header24 = (
        _js_round(63 * l_dc)
        | (_js_round(31.5 + 31.5 * p_dc) << 6)
        | (_js_round(31.5 + 31.5 * q_dc) << 12)
        | (_js_round(31 * l_scale) << 18)
        | (int(has_alpha) << 23)
    )
    header16 = (
        (ly if landscape else lx)
        | (_js_round(63 * p_scale) << 3)
        | (_js_round(63 * q_scale) << 9)
        | (int(landscape) << 15)
    )
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    acs = [l_ac, p_ac, q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = encoder.channel(alpha, 5, 5)
        out.append(_js_round(15 * a_dc) | (_js_round(15 * a_scale) << 4))
        acs.append(a_ac)
    start, index = len(out), 0
    for ac in acs:
        for f in ac:
            if (index >> 1) + start >= len(out):
                out.append(0)
            out[start + (index >> 1)] |= _js_round(15 * f) << ((index & 1) << 2)
            index += 1
    return bytes(byte & 255 for byte in out)


def thumbhash_of(image: Image.Image) -> str:
    """Base64 ThumbHash of an upright sRGB image (the smallest variant, typically)."""
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    if rgba.width > INPUT_SIDE or rgba.height > INPUT_SIDE:
        scale = min(INPUT_SIDE / rgba.width, INPUT_SIDE / rgba.height)
        size = (max(1, round(rgba.width * scale)), max(1, round(rgba.height * scale)))
        rgba = rgba.resize(size, Image.Resampling.BOX)
    return base64.b64encode(rgba_to_thumbhash(rgba.width, rgba.height, rgba.tobytes())).decode()
