"""Uploads through the SDK: the POST form, parallel multipart, resume, duplicates."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud_image_client import Client
from conftest import Service, png_bytes, wait_for_variants

MiB = 1024 * 1024


class PartCounter:
    """Counts presigned part PUTs (and how many were in flight at once) via httpx hooks."""

    def __init__(self) -> None:
        self.parts: list[int] = []
        self.forms = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def on_request(self, request: httpx.Request) -> None:
        with self.lock:
            if request.method == "PUT" and "partNumber" in request.url.params:
                self.parts.append(int(request.url.params["partNumber"]))
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if request.method == "POST" and request.url.path == "/images/upload":
                self.forms += 1

    def on_response(self, response: httpx.Response) -> None:
        request = response.request
        with self.lock:
            if request.method == "PUT" and "partNumber" in request.url.params:
                self.in_flight -= 1

    def http(self) -> httpx.Client:
        hooks: dict[str, list[Callable[..., Any]]] = {
            "request": [self.on_request],
            "response": [self.on_response],
        }
        return httpx.Client(timeout=60, event_hooks=hooks)


def test_small_upload_is_ready_and_gets_variants(client: Client, user: str) -> None:
    data = png_bytes(300, seed=1)
    seen: list[tuple[int, int]] = []
    image = client.upload(
        data,
        user_id=user,
        tags=["cat", "test"],
        description="a cat",
        filename="cat.png",
        progress=lambda sent, total: seen.append((sent, total)),
    )
    assert image.status == "ready"
    assert image.content_type == "image/png"  # guessed from the bytes
    assert (image.size, image.width, image.height) == (len(data), 300, 300)
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.tags == ("cat", "test")
    assert (image.filename, image.description, image.user_id) == ("cat.png", "a cat", user)
    assert seen[-1] == (len(data), len(data))
    made = wait_for_variants(client, image.image_id)
    assert set(made.variants) == {"thumb", "preview"}
    assert made.variants["thumb"].width == 256
    assert made.placeholder


def test_multipart_upload_sends_parts_in_parallel(
    service: Service, big_png: Path, user: str, state_dir: Path
) -> None:
    counter = PartCounter()
    with Client(service.url, state_dir=state_dir, http_client=counter.http()) as client:
        image = client.upload(big_png, user_id=user, tags=["big"])
    size = big_png.stat().st_size
    assert size > 16 * MiB  # above the default threshold: multipart
    assert image.status == "ready"
    assert (image.size, image.width, image.height) == (size, 2600, 2600)
    assert image.sha256 == hashlib.sha256(big_png.read_bytes()).hexdigest()
    assert image.filename == "big.png"
    assert counter.forms == 0
    assert sorted(counter.parts) == [1, 2, 3]  # 8 MiB parts
    assert counter.max_in_flight >= 2
    assert not list(state_dir.glob("*.json"))  # done: nothing left to resume


class Interrupted(Exception):
    """What the progress callback raises to simulate a crash."""


def test_interrupted_multipart_upload_resumes_with_missing_parts_only(
    service: Service, big_png: Path, user: str, state_dir: Path
) -> None:
    counter = PartCounter()
    part = 8 * MiB

    def crash_in_third_part(sent: int, total: int) -> None:
        if sent > 2 * part:
            raise Interrupted

    one_at_a_time = Client(
        service.url, state_dir=state_dir, part_concurrency=1, http_client=counter.http()
    )
    with pytest.raises(Interrupted):
        one_at_a_time.upload(big_png, user_id=user, progress=crash_in_third_part)
    assert counter.parts == [1, 2, 3]  # the third was cut off
    [state_file] = state_dir.glob("*.json")
    state = json.loads(state_file.read_text())
    assert state["part_size"] == part
    assert state["size"] == big_png.stat().st_size

    counter.parts.clear()
    first: list[int] = []
    with Client(service.url, state_dir=state_dir, http_client=counter.http()) as client:
        image = client.upload(
            big_png, user_id=user, progress=lambda sent, total: first.append(sent)
        )
    assert counter.parts == [3]  # parts 1 and 2 were listed, not sent again
    assert first[0] == 2 * part
    assert image.image_id == state["image_id"]
    assert image.status == "ready"
    assert image.sha256 == hashlib.sha256(big_png.read_bytes()).hexdigest()
    assert not state_file.exists()


def test_skip_duplicates_returns_the_stored_image(
    service: Service, user: str, state_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "dup.png"
    path.write_bytes(png_bytes(64, seed=2))
    counter = PartCounter()
    with Client(service.url, state_dir=state_dir, http_client=counter.http()) as client:
        first = client.upload(path, user_id=user)
        again = client.upload(path, user_id=user, skip_duplicates=True)
        other = client.upload(path, user_id=f"{user}-b", skip_duplicates=True)
    assert again == first
    assert counter.forms == 2  # the duplicate was not uploaded; another user's is not one
    assert other.image_id != first.image_id


def test_skip_duplicates_with_authentication_needs_no_user(guarded: Service, user: str) -> None:
    data = png_bytes(48, seed=3)
    with Client(guarded.url, token=guarded.token(user)) as client:
        first = client.upload(data)
        again = client.upload(data, skip_duplicates=True)
        assert client.find_by_sha256(hashlib.sha256(data).hexdigest()) == [first]
    assert first.user_id == user
    assert again.image_id == first.image_id


def test_multipart_threshold_is_an_argument(client: Client, user: str) -> None:
    data = png_bytes(1200, seed=4, compress_level=0)  # about 4 MiB
    image = client.upload(data, user_id=user, multipart_threshold=1 * MiB)
    assert image.status == "ready"
    assert image.size == len(data)
