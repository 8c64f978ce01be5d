"""The gallery page in Chromium, against SeaweedFS with bucket CORS enforced.

Uploads go from the page straight to S3 (POST form; multipart above 16 MiB, resumable),
tiles show the `thumb` variant over a ThumbHash placeholder, the grid follows `next_cursor`
(PAGE_SIZE = 30 images per request), and the page loads nothing from any origin but its
own and the S3 endpoint, with no console error and no CSP violation.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, FilePayload, Page, Request, expect

from cloud_image_service.auth.tokens import mint_token
from tests.browser.conftest import CorsStores, Gallery, PageWatch, origin_of, start_gallery
from tests.browser.support import (
    ANY_THUMB_LOADED,
    PLACEHOLDER_COLOUR,
    THUMBS_LOADED,
    TILE_IDS,
    UPLOADS_SETTLED,
    drop_files,
    mean_colour,
    picture,
    seed,
    sign_in,
    upload_rows,
    wait_for_variants,
)

PAGE_SIZE = 30  # grid.js: images per list request
SEEDED = 40  # two pages
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "gallery.png"
MULTIPART_STORE = "cis-gallery-multipart"  # upload.js: localStorage key of unfinished uploads


def tile_ids(page: Page) -> list[str]:
    ids: list[str] = page.evaluate(TILE_IDS)
    return ids


def test_dropped_files_become_tiles_and_a_fake_shows_its_reason(
    gallery: Gallery, page: Page, watch: PageWatch
) -> None:
    user = "alice"  # a fixed name: the screenshot for the README shows it
    with gallery.api() as api, ThreadPoolExecutor(5) as pool:
        earlier = list(
            pool.map(
                lambda index: seed(api, user, picture(index), f"trip-{index}.png", tags=["trip"]),
                range(3, 8),
            )
        )
        wait_for_variants(api, [image["image_id"] for image in earlier])
    sign_in(page, gallery.url, user, press_enter=True)
    expect(page.locator("[data-image-id]")).to_have_count(5)

    dropped = [
        ("lake.png", "image/png", picture(0)),
        ("dunes.jpg", "image/jpeg", picture(1, kind="JPEG")),
        ("meadow.png", "image/png", picture(2, 320, 480)),
    ]
    fake = ("fake.png", "image/png", b"this is text, not a PNG\n")
    drop_files(page, [*dropped, fake], "#drop-zone")
    page.wait_for_function(UPLOADS_SETTLED, arg=4, timeout=60_000)

    rows = upload_rows(page)
    ready = {text.split(" ")[0]: image_id for state, text, image_id in rows if state == "ready"}
    rejected = [text for state, text, _ in rows if state == "rejected"]
    assert sorted(ready) == ["dunes.jpg", "lake.png", "meadow.png"], rows
    with gallery.api() as api:
        listed = api.get("/images", params={"user_id": user, "status": "rejected"}).json()
    reason = listed["items"][0]["reason"]
    assert reason.startswith("content does not match image/png")
    assert len(rejected) == 1
    assert "fake.png" in rejected[0]
    assert reason in rejected[0]

    ids = [ready[name] for name, _, _ in dropped]
    page.wait_for_function(THUMBS_LOADED, arg=ids, timeout=60_000)
    assert len(tile_ids(page)) == 8
    assert set(tile_ids(page)[:3]) == set(ids)  # the new ones come first
    for (_, _, data), image_id in zip(dropped, ids, strict=True):
        img = page.locator(f'[data-image-id="{image_id}"] img')
        src = img.get_attribute("src") or ""
        assert origin_of(src) == gallery.s3_origin
        assert f"/variants/{image_id}/thumb" in src  # the thumb, not the original
        assert img.evaluate("(img) => img.naturalWidth") <= 256
        # The ThumbHash placeholder, decoded by the page, has the picture's colours.
        colour = page.evaluate(PLACEHOLDER_COLOUR, image_id)
        assert colour is not None
        assert 0 < colour[3] <= 32
        assert 0 < colour[4] <= 32
        expected = mean_colour(data)
        assert all(abs(colour[c] - expected[c]) < 40 for c in range(3)), (colour, expected)

    page.evaluate("() => window.scrollTo(0, 0)")
    shot = page.screenshot(full_page=True)
    assert len(shot) > 10_000
    if os.environ.get("CIS_GALLERY_SCREENSHOT") or not SCREENSHOT.exists():
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(shot)

    # The fake's 422 from /complete is the API giving the reason, logged by Chromium.
    watch.assert_clean(gallery.url, gallery.s3_origin, expected=((422, "/complete"),))


def test_picker_detail_keyboard_download_filter_and_delete(
    gallery: Gallery, page: Page, watch: PageWatch, user: str, tmp_path: Path
) -> None:
    with gallery.api() as api:
        other = seed(api, user, picture(5), "untagged.png")
        wait_for_variants(api, [other["image_id"]])
    lake, dunes = tmp_path / "lake.jpg", tmp_path / "dunes.png"
    lake.write_bytes(picture(1, 640, 400, kind="JPEG"))
    dunes.write_bytes(picture(3))
    sign_in(page, gallery.url, user)
    page.fill("input[name=upload_tags]", "picked, holiday")
    page.set_input_files("input[type=file]", [lake, dunes])
    page.wait_for_function(UPLOADS_SETTLED, arg=2, timeout=60_000)
    rows = {text.split(" ")[0]: (state, image_id) for state, text, image_id in upload_rows(page)}
    assert {name: state for name, (state, _) in rows.items()} == {
        "lake.jpg": "ready",
        "dunes.png": "ready",
    }
    lake_id = rows["lake.jpg"][1]
    page.wait_for_function(THUMBS_LOADED, arg=[rows["dunes.png"][1], lake_id], timeout=60_000)

    # The keyboard: Tab reaches the tiles, Enter opens the detail, Escape closes it.
    page.focus("[data-action=clear-filter]")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.dataset.imageId") == tile_ids(page)[0]
    tile = page.locator(f'[data-image-id="{lake_id}"]')
    tile.focus()
    page.keyboard.press("Enter")
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("lake.jpg")
    expect(detail).to_contain_text("640 \N{MULTIPLICATION SIGN} 400")
    expect(detail).to_contain_text("picked")
    preview = detail.locator("img")
    page.wait_for_function(
        "() => document.querySelector('#detail img').naturalWidth > 0", timeout=60_000
    )
    assert f"/variants/{lake_id}/preview" in (preview.get_attribute("src") or "")
    with page.expect_download() as downloading:
        detail.locator("[data-action=download]").click()
    assert Path(downloading.value.path()).read_bytes() == lake.read_bytes()
    assert downloading.value.suggested_filename == "lake.jpg"
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    assert page.evaluate("() => document.activeElement.dataset.imageId") == lake_id

    # The tag filter.
    page.fill("input[name=tag]", "picked")
    page.press("input[name=tag]", "Enter")
    expect(page.locator("[data-image-id]")).to_have_count(2)
    assert other["image_id"] not in tile_ids(page)

    # Delete: a dismissed confirm keeps the image, an accepted one deletes it.
    def dismiss(dialog: Dialog) -> None:
        dialog.dismiss()

    def accept(dialog: Dialog) -> None:
        assert "lake.jpg" in dialog.message
        dialog.accept()

    page.once("dialog", dismiss)
    tile.locator("[data-action=delete]").click()
    page.wait_for_timeout(200)
    expect(tile).to_have_count(1)
    page.once("dialog", accept)
    tile.locator("[data-action=delete]").click()
    expect(tile).to_have_count(0)
    with gallery.api() as api:
        assert api.get(f"/images/{lake_id}").status_code == 404
    watch.assert_clean(gallery.url, gallery.s3_origin)


def test_infinite_scroll_follows_next_cursor_and_waits_out_variant_not_ready(
    gallery: Gallery, page: Page, watch: PageWatch, user: str
) -> None:
    gallery.worker.pause()  # no variants yet: the thumbs' downloads answer 409 meanwhile
    try:
        with gallery.api() as api, ThreadPoolExecutor(8) as pool:
            seeded = list(
                pool.map(
                    lambda index: seed(api, user, picture(index, 96, 64), f"p{index:02}.png"),
                    range(SEEDED),
                )
            )
        # An hour later for the page: the images are not recent, so their thumbs are asked
        # for at once (no watching of their metadata first) and answer 409 meanwhile.
        page.clock.set_fixed_time(datetime.now(UTC) + timedelta(hours=1))
        sign_in(page, gallery.url, user)
        expect(page.locator("[data-image-id]")).to_have_count(PAGE_SIZE)
        page.wait_for_timeout(300)
        assert len(tile_ids(page)) == PAGE_SIZE  # one page only, until the page scrolls
        not_ready = page.wait_for_event(
            "response",
            lambda response: "variant=thumb" in response.url and response.status == 409,
        )
        assert not_ready.json()["code"] == "variant_not_ready"
        assert int(not_ready.headers["retry-after"]) >= 1
    finally:
        gallery.worker.resume()

    for _ in range(20):
        if len(tile_ids(page)) == len(seeded):
            break
        page.mouse.wheel(0, 4000)
        page.wait_for_timeout(250)
    expect(page.locator("#grid-status")).to_contain_text("that is all")
    ids = tile_ids(page)
    assert len(ids) == len(set(ids)) == SEEDED
    assert set(ids) == {image["image_id"] for image in seeded}
    lists = [r.url for r in watch.requests if re.search(r"/images\?", r.url)]
    assert len(lists) >= 2
    assert "cursor=" not in lists[0]
    assert all("cursor=" in url for url in lists[1:])
    assert all(f"limit={PAGE_SIZE}" in url for url in lists)

    # After Retry-After, once the worker has made them, the thumbs load.
    page.wait_for_function(ANY_THUMB_LOADED, timeout=60_000)
    watch.assert_clean(gallery.url, gallery.s3_origin, expected=((409, "variant=thumb"),))


def test_a_large_file_goes_in_parts_and_resumes_after_a_reload(
    gallery: Gallery, page: Page, watch: PageWatch, user: str, tmp_path: Path
) -> None:
    big = tmp_path / "panorama.png"
    big.write_bytes(picture(6, 2400, 2400, compress_level=0))  # stored, not compressed
    assert 16 * 1024 * 1024 < big.stat().st_size < 25 * 1024 * 1024  # 3 parts of 8 MiB
    sign_in(page, gallery.url, user)

    def part_puts() -> list[int]:
        return [
            int(found.group(1))
            for request in watch.requests
            if request.method == "PUT"
            and (found := re.search(r"[?&]partNumber=(\d+)", request.url)) is not None
        ]

    # Part 2 cannot reach S3: the upload stops, resumable, and says so. (Chromium blocks the
    # URLs itself: a Playwright route would pass every 8 MiB part through the driver.)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setBlockedURLs", {"urls": ["*partNumber=2&*", "*partNumber=2"]})
    page.set_input_files("input[type=file]", big)
    page.wait_for_function(UPLOADS_SETTLED, arg=1, timeout=60_000)
    [(state, text, _)] = upload_rows(page)
    assert state == "rejected"
    assert "panorama.png" in text
    assert "resume" in text
    assert sorted(set(part_puts())) == [1, 2, 3]
    saved = page.evaluate(f"() => localStorage.getItem('{MULTIPART_STORE}')")
    assert saved
    assert "uploadId" in saved

    # A reload: the page still knows the upload; choosing the file again sends part 2 only.
    # Meanwhile the bucket's CORS rule stops exposing ETag (as on a bucket set up by hand):
    # the page then takes the part's ETag from the service's list of the parts.
    cdp.send("Network.setBlockedURLs", {"urls": []})
    cdp.detach()
    bucket = gallery.server.runtime.bucket
    rules = bucket.client.get_bucket_cors(Bucket=bucket.bucket)["CORSRules"]
    hidden = [rule.copy() for rule in rules]
    for rule in hidden:
        rule["ExposeHeaders"] = []
    bucket.client.put_bucket_cors(Bucket=bucket.bucket, CORSConfiguration={"CORSRules": hidden})
    before = len(watch.requests)
    try:
        page.reload()
        expect(page.locator("[data-resumable]")).to_contain_text("panorama.png")
        page.set_input_files("input[type=file]", big)
        page.wait_for_function(UPLOADS_SETTLED, arg=1, timeout=90_000)
    finally:
        bucket.client.put_bucket_cors(Bucket=bucket.bucket, CORSConfiguration={"CORSRules": rules})
    [(state, text, image_id)] = upload_rows(page)
    assert state == "ready", text
    resent = [
        int(found.group(1))
        for request in watch.requests[before:]
        if request.method == "PUT"
        and (found := re.search(r"[?&]partNumber=(\d+)", request.url)) is not None
    ]
    assert resent == [2]
    listed = [
        request
        for request in watch.requests[before:]
        if request.method == "GET" and re.search(r"/s3/multipart/[^/?]+\?key=", request.url)
    ]
    assert len(listed) == 2  # which parts S3 holds (to resume), then part 2's ETag
    assert page.evaluate(f"() => localStorage.getItem('{MULTIPART_STORE}')") is None
    expect(page.locator("[data-resumable]")).to_have_count(0)
    with gallery.api() as api:
        image = api.get(f"/images/{image_id}").json()
    assert (image["status"], image["size"]) == ("ready", big.stat().st_size)
    page.wait_for_function(THUMBS_LOADED, arg=[image_id], timeout=60_000)
    # The blocked part's requests fail on purpose; nothing else may.
    errors = [e for e in watch.unexpected_errors() if "ERR_BLOCKED_BY_CLIENT" not in e]
    assert errors == []
    assert watch.foreign_requests(gallery.url, gallery.s3_origin) == []
    assert watch.csp_violations() == []


def test_s3_refuses_a_page_on_an_origin_the_bucket_does_not_allow(
    gallery: Gallery, page: Page, watch: PageWatch, user: str
) -> None:
    elsewhere = gallery.url.replace("127.0.0.1", "localhost")  # same app, another origin
    sign_in(page, elsewhere, user)
    drop_files(page, [("lake.png", "image/png", picture(0))], "#drop-zone")
    page.wait_for_function(UPLOADS_SETTLED, arg=1, timeout=60_000)
    [(state, text, _)] = upload_rows(page)
    assert state == "rejected"
    assert "lake.png" in text
    assert "CORS" in text
    with gallery.api() as api:
        pending = api.get("/images", params={"user_id": user, "status": "pending"}).json()
    assert len(pending["items"]) == 1  # the bytes never reached S3
    assert watch.foreign_requests(elsewhere, gallery.s3_origin) == []


SECRET = "browser-suite-secret-of-at-least-32-bytes"


@pytest.fixture(scope="module")
def secured(cors_stores: CorsStores) -> Iterator[Gallery]:
    """The app with authentication on (jwt), its own origin, bucket and table."""
    running = start_gallery(cors_stores, auth_mode="jwt", jwt_secret=SECRET)
    yield running
    running.stop()


def test_a_token_signs_in_is_kept_for_the_tab_only_and_never_in_a_url(
    secured: Gallery, page: Page, watch: PageWatch
) -> None:
    page.goto(secured.url + "/")
    api_key = "cis_" + "k" * 40

    def lists(request: Request) -> bool:
        return "/images?" in request.url

    with page.expect_request(lists) as asked:
        page.fill("input[name=token]", api_key)
        page.click("[data-action=sign-in]")
    assert asked.value.headers.get("x-api-key") == api_key
    assert "authorization" not in asked.value.headers
    expect(page.locator("#notice")).to_contain_text("Sign-in refused")  # jwt mode: a 401

    token = mint_token(secured.settings, "carol")
    with page.expect_request(lists) as asked:
        page.fill("input[name=token]", token)
        page.press("input[name=token]", "Enter")
    assert asked.value.headers.get("authorization") == f"Bearer {token}"
    expect(page.locator("#who")).to_contain_text("carol")
    mine: FilePayload = {"name": "mine.png", "mimeType": "image/png", "buffer": picture(4)}
    page.set_input_files("input[type=file]", files=[mine])
    page.wait_for_function(UPLOADS_SETTLED, arg=1, timeout=60_000)
    [(state, text, image_id)] = upload_rows(page)
    assert state == "ready", text
    page.wait_for_function(THUMBS_LOADED, arg=[image_id], timeout=60_000)

    page.reload()  # the tab keeps the sign-in (sessionStorage), nothing else does
    expect(page.locator(f'[data-image-id="{image_id}"]')).to_have_count(1)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: no sideways scrolling
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    tile = page.locator(f'[data-image-id="{image_id}"]').bounding_box()
    assert tile is not None
    assert tile["width"] < 150
    stored = page.evaluate("() => JSON.stringify(sessionStorage)")
    assert token in stored
    assert page.evaluate("() => JSON.stringify(localStorage)").find(token) == -1
    assert all(token not in request.url for request in watch.requests)
    assert all(api_key not in request.url for request in watch.requests)
    page.click("[data-action=sign-out]")
    assert token not in page.evaluate("() => JSON.stringify(sessionStorage)")
    watch.assert_clean(secured.url, secured.s3_origin, expected=((401, "/images"),))
