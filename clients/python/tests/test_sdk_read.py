"""Listing across pages, downloads to a path, delete."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cloud_image_client import Client, NotFound
from conftest import png_bytes, wait_for_variants


def test_images_follows_cursors_across_pages(client: Client, user: str) -> None:
    made = [
        client.upload(png_bytes(16, seed=10 + n), user_id=user, tags=["even" if n % 2 else "odd"])
        for n in range(5)
    ]
    page = client.list_page(user_id=user, limit=2)
    assert len(page.items) == 2
    assert page.next_cursor
    listed = list(client.images(user_id=user, page_size=2))
    assert [image.image_id for image in listed] == [i.image_id for i in reversed(made)]
    odd = list(client.images(user_id=user, tag="odd", page_size=1))
    assert {image.image_id for image in odd} == {
        made[0].image_id,
        made[2].image_id,
        made[4].image_id,
    }
    assert list(client.images(user_id=user, status="rejected")) == []


def test_download_original_and_variant(client: Client, user: str, tmp_path: Path) -> None:
    data = png_bytes(400, seed=20)
    image = client.upload(data, user_id=user, filename="photo.png")
    original = client.download(image.image_id, tmp_path / "copy.png")
    assert original == tmp_path / "copy.png"
    assert original.read_bytes() == data
    into_folder = client.download(image.image_id, tmp_path)
    assert into_folder == tmp_path / "photo.png"  # the service's name for it
    wait_for_variants(client, image.image_id)
    received: list[int] = []
    thumb = client.download(
        image.image_id,
        tmp_path,
        variant="thumb",
        progress=lambda sent, total: received.append(sent),
    )
    assert thumb == tmp_path / "photo-thumb.webp"
    assert thumb.read_bytes()[:4] == b"RIFF"
    assert received[-1] == thumb.stat().st_size
    made = client.download(image.image_id, f"{tmp_path}/new/thumbs/", variant="thumb")
    assert made == tmp_path / "new" / "thumbs" / "photo-thumb.webp"  # folders made
    assert made.read_bytes() == thumb.read_bytes()
    assert not list(tmp_path.glob(".*.part"))
    assert hashlib.sha256(original.read_bytes()).hexdigest() == image.sha256


def test_delete(client: Client, user: str) -> None:
    image = client.upload(png_bytes(16, seed=30), user_id=user)
    client.delete(image.image_id)
    with pytest.raises(NotFound):
        client.get(image.image_id)
    with pytest.raises(NotFound):
        client.delete(image.image_id)
