"""Helpers of the browser suite: pictures, seeding through the API, what the page is asked."""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import httpx
from PIL import Image, ImageDraw
from playwright.sync_api import Page

from tests.images import complete

# Pairs of colours (sky, ground) that tell the pictures apart.
PALETTES = [
    ((255, 153, 102), (190, 60, 80)),
    ((86, 204, 242), (30, 90, 170)),
    ((200, 235, 140), (70, 140, 50)),
    ((255, 214, 120), (200, 110, 20)),
    ((190, 150, 240), (80, 40, 150)),
    ((120, 225, 230), (20, 120, 110)),
    ((255, 160, 190), (150, 50, 110)),
    ((230, 230, 240), (90, 100, 130)),
]


def picture(
    index: int, width: int = 480, height: int = 320, kind: str = "PNG", compress_level: int = 6
) -> bytes:
    """A landscape: a sky gradient, a sun, hills; each index its own colours and shapes."""
    sky, ground = PALETTES[index % len(PALETTES)]
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / max(1, height - 1)
        colour = tuple(round(a + (b - a) * t * 0.8) for a, b in zip(sky, ground, strict=True))
        draw.line([(0, y), (width, y)], fill=colour)
    radius = min(width, height) // 7
    cx = width * (0.2 + 0.6 * ((index * 37) % 10) / 10)
    cy = height * 0.32
    draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=(255, 246, 214))
    step = max(1, width // 60)
    waves = 2 + index % 3
    hills = [
        (x, height * 0.68 - height * 0.1 * math.sin(x / width * math.pi * waves + index))
        for x in range(0, width + step, step)
    ]
    draw.polygon([(0, height), *hills, (width, height)], fill=ground)
    buffer = io.BytesIO()
    if kind == "PNG":
        image.save(buffer, "PNG", compress_level=compress_level)
    else:
        image.save(buffer, kind, quality=90)
    return buffer.getvalue()


def mean_colour(data: bytes) -> tuple[float, float, float]:
    """The average RGB of an image's pixels."""
    with Image.open(io.BytesIO(data)) as image:
        raw = image.convert("RGB").resize((32, 32)).tobytes()
    count = len(raw) // 3
    return (sum(raw[0::3]) / count, sum(raw[1::3]) / count, sum(raw[2::3]) / count)


def seed(
    api: httpx.Client,
    user: str,
    data: bytes,
    filename: str,
    content_type: str = "image/png",
    tags: Sequence[str] = (),
) -> dict[str, Any]:
    """Upload through the API as a script would (POST form, then complete): a ready image."""
    body = {"user_id": user, "content_type": content_type, "filename": filename, "tags": [*tags]}
    response = api.post("/images/upload", json=body)
    assert response.status_code == 201, response.text
    upload: dict[str, Any] = response.json()
    form = upload["upload_form"]
    files = {"file": (filename, data, content_type)}
    sent = httpx.post(form["url"], data=form["fields"], files=files, timeout=30)
    assert sent.status_code == 204, sent.text
    done = complete(api, upload["image_id"])
    assert done.status_code == 200, done.text
    image: dict[str, Any] = done.json()
    return image


def wait_for_variants(api: httpx.Client, image_ids: Iterable[str], seconds: float = 30) -> None:
    """Until every image has its thumb and preview (the worker thread makes them)."""
    deadline = time.monotonic() + seconds
    for image_id in image_ids:
        while True:
            variants = api.get(f"/images/{image_id}").json()["variants"]
            if {"thumb", "preview"} <= set(variants):
                break
            assert time.monotonic() < deadline, f"no variants for {image_id}"
            time.sleep(0.2)


# Page-side functions (functions, not expressions: the page's CSP has no 'unsafe-eval', and
# Playwright evaluates a bare expression with eval).

DROP = """([files, selector]) => {
  const transfer = new DataTransfer();
  for (const file of files) {
    const bytes = Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], file.name, { type: file.type }));
  }
  const target = document.querySelector(selector);
  for (const type of ["dragenter", "dragover", "drop"]) {
    const event = new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true });
    target.dispatchEvent(event);
  }
}"""

UPLOADS_SETTLED = """(count) => {
  const rows = [...document.querySelectorAll("[data-upload-state]")];
  return rows.length === count && rows.every((row) => row.dataset.uploadState !== "uploading");
}"""

THUMBS_LOADED = """(ids) => ids.every((id) => {
  const img = document.querySelector(`[data-image-id="${id}"] img`);
  return img !== null && img.complete && img.naturalWidth > 0;
})"""

ANY_THUMB_LOADED = """() => [...document.querySelectorAll("[data-image-id] img")].some(
  (img) => img.complete && img.naturalWidth > 0
)"""

TILE_IDS = """() => [...document.querySelectorAll("[data-image-id]")].map(
  (tile) => tile.dataset.imageId
)"""

# The average colour of a tile's ThumbHash placeholder, as the page's decoder drew it.
PLACEHOLDER_COLOUR = """(id) => {
  const canvas = document.querySelector(`[data-image-id="${id}"] canvas`);
  if (!canvas || !canvas.width) return null;
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  const sum = [0, 0, 0];
  for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += data[i + c];
  const n = data.length / 4;
  return [sum[0] / n, sum[1] / n, sum[2] / n, canvas.width, canvas.height];
}"""


def drop_files(page: Page, files: Sequence[tuple[str, str, bytes]], selector: str) -> None:
    """Drag and drop files (name, type, bytes) onto the element `selector`."""
    payload = [
        {"name": name, "type": kind, "data": base64.b64encode(data).decode()}
        for name, kind, data in files
    ]
    page.evaluate(DROP, [payload, selector])


def upload_rows(page: Page) -> list[tuple[str, str, str]]:
    """Each upload's state, text and image id (once ready), newest first."""
    rows: list[tuple[str, str, str]] = page.eval_on_selector_all(
        "[data-upload-state]",
        """(rows) => rows.map((row) => [
          row.dataset.uploadState, row.textContent, row.dataset.uploadedId || ""
        ])""",
    )
    return rows


def sign_in(page: Page, url: str, user: str, press_enter: bool = False) -> None:
    """Open the gallery and sign in with a user id (authentication off)."""
    page.goto(url + "/")
    page.fill("input[name=user_id]", user)
    if press_enter:
        page.press("input[name=user_id]", "Enter")
    else:
        page.click("[data-action=sign-in]")
    page.locator("[data-action=sign-out]").wait_for()
