"""API steps several scenarios share: the sample PNG, presign, the POST form, complete."""

from __future__ import annotations

import hashlib
import io
import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import httpx
from PIL import Image as PillowImage

from bench.harness import LOCAL_HOSTS

FLOW_PNG_SIDE = 82  # 82 x 82 RGB noise: a PNG of about 20 KB that does not compress away
FLOW_S3_STATUS = 204  # S3's answer to a presigned POST without success_action_status


class FlowFailed(Exception):
    """A step did not answer as expected; the message names the step and the answer."""


class FailureCounter:
    """Thread-safe count of failures by the reason (step and answer)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def add(self, reason: str) -> None:
        """Count one failure."""
        with self.lock:
            self.counts[reason] += 1

    def most_common(self) -> dict[str, int]:
        """Reason -> count, most frequent first."""
        with self.lock:
            return dict(self.counts.most_common())


@cache
def sample_png(side: int = FLOW_PNG_SIDE) -> bytes:
    """A real PNG of seeded RGB noise (about 20 KB at 82 x 82): noise does not compress."""
    noise = random.Random(0).randbytes(side * side * 3)
    buffer = io.BytesIO()
    PillowImage.frombytes("RGB", (side, side), noise).save(buffer, format="PNG")
    return buffer.getvalue()


def sha256_hex(data: bytes) -> str:
    """The digest the service reports for verified bytes."""
    return hashlib.sha256(data).hexdigest()


def is_loopback(url: str) -> bool:
    """Presigned URLs name the S3 endpoint: the benchmark only follows local ones."""
    return urlsplit(url).hostname in LOCAL_HOSTS


def expect(response: httpx.Response, status: int, step: str) -> httpx.Response:
    """The response when its status is `status`, else FlowFailed naming the step."""
    if response.status_code != status:
        raise FlowFailed(f"{step}: HTTP {response.status_code}")
    return response


@contextmanager
def step(name: str) -> Iterator[None]:
    """Turn a transport error or an unexpected body into FlowFailed naming the step."""
    try:
        yield
    except httpx.HTTPError as exc:
        raise FlowFailed(f"{name}: {type(exc).__name__}") from exc
    except (KeyError, TypeError, ValueError) as exc:  # ValueError: a body that is not JSON
        raise FlowFailed(f"{name}: unexpected answer ({type(exc).__name__})") from exc


def presign(
    client: httpx.Client,
    user_id: str,
    png: bytes,
    filename: str,
    tags: list[str],
    auth: dict[str, str],
) -> tuple[str, dict[str, Any]]:
    """POST /images/upload (with `size`): the image id and the whole answer."""
    body = {
        "user_id": user_id,
        "content_type": "image/png",
        "tags": tags,
        "filename": filename,
        "size": len(png),
    }
    with step("presign"):
        upload: dict[str, Any] = expect(
            client.post("/images/upload", json=body, headers=auth), 201, "presign"
        ).json()
        return str(upload["image_id"]), upload


def post_form(client: httpx.Client, upload: dict[str, Any], png: bytes, filename: str) -> None:
    """The multipart POST of the bytes to the presigned form (no token: it is signed)."""
    with step("upload"):
        form = upload["upload_form"]
        check_destination(form["url"], upload, png)
        # httpx sends `data` before `files`: the policy's fields first, the file last.
        files = {"file": (filename, png, "image/png")}
        expect(client.post(form["url"], data=form["fields"], files=files), FLOW_S3_STATUS, "upload")


def put_upload(client: httpx.Client, upload: dict[str, Any], png: bytes) -> None:
    """The PUT of the bytes to the presigned `upload_url` with its `upload_headers` (no token)."""
    with step("upload"):
        url = upload["upload_url"]
        check_destination(url, upload, png)
        expect(client.put(url, content=png, headers=upload["upload_headers"]), 200, "upload")


def check_destination(url: str, upload: dict[str, Any], png: bytes) -> None:
    """A presigned upload goes to 127.0.0.1 only, and the bytes must fit `max_bytes`."""
    if not is_loopback(url) or len(png) > upload["max_bytes"]:
        raise FlowFailed("upload: URL not on 127.0.0.1 or PNG above max_bytes")


def complete(client: httpx.Client, image_id: str, digest: str, auth: dict[str, str]) -> None:
    """POST /images/{id}/complete: 200, `status: ready` and the upload's sha256."""
    with step("complete"):
        completed = client.post(f"/images/{image_id}/complete", headers=auth)
        image = expect(completed, 200, "complete").json()
        if image["status"] != "ready" or image["sha256"] != digest:
            raise FlowFailed(f"complete: status {image['status']}, sha256 {image['sha256']}")


def delete(client: httpx.Client, image_id: str, auth: dict[str, str]) -> None:
    """DELETE /images/{id}: 200."""
    with step("delete"):
        expect(client.delete(f"/images/{image_id}", headers=auth), 200, "delete")


def pending_upload(
    client: httpx.Client, user_id: str, png: bytes, filename: str, auth: dict[str, str]
) -> str:
    """Presign and POST the bytes, not completed: the id of a pending image with its bytes."""
    image_id, upload = presign(client, user_id, png, filename, ["bench"], auth)
    try:
        post_form(client, upload, png, filename)
    except FlowFailed:
        best_effort_delete(client, image_id, auth)
        raise
    return image_id


def best_effort_delete(client: httpx.Client, image_id: str, auth: dict[str, str]) -> None:
    """A failed step should not leave its record (or object) behind."""
    with suppress(httpx.HTTPError):
        client.delete(f"/images/{image_id}", headers=auth)
