"""What `Client` and `AsyncClient` share, without I/O: retries, request bodies, part layout,
progress and the helpers of downloads."""

from __future__ import annotations

import math
import os
import random
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

from cloud_image_client.errors import (
    ApiError,
    BackendUnavailable,
    RateLimited,
    ServerError,
    StorageError,
    VerificationInProgress,
)

MiB = 1024 * 1024
DEFAULT_MULTIPART_THRESHOLD = 16 * MiB
MIN_PART_BYTES = 5 * MiB  # S3: every part but the last
MAX_PARTS = 10_000
SIGN_BATCH = 16  # part URLs signed per request
URL_LIFETIME_S = 240.0  # a signed part URL is used within this (the service signs for 300 s)

ProgressCallback = Callable[[int, int], object]


# ---------------------------------------------------------------------------------- retries


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter; `Retry-After` is honoured.

    `retries` is how many times a request is repeated after its first try (0: never).
    """

    retries: int = 5
    base_delay: float = 0.25
    max_delay: float = 20.0
    connect_retries: int = 2  # a refused connection or an unknown host rarely heals in seconds

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2**attempt)
        jittered = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            # The server's hint, plus a little jitter so that many clients do not align.
            jittered = retry_after + random.uniform(0, min(1.0, retry_after / 4 + 0.1))
        return min(self.max_delay, jittered)


def transport_retry(
    policy: RetryPolicy, attempt: int, exc: httpx.TransportError, idempotent: bool
) -> bool:
    """Whether to try again after a transport error (retry number `attempt`, 0-based)."""
    if not transport_retryable(exc, idempotent):
        return False
    limit = policy.retries
    if isinstance(exc, httpx.ConnectError):
        limit = min(limit, policy.connect_retries)
    return attempt < limit


# Extra codes retried by some calls: a download waits for a variant being made; a
# verification (`complete`) that lost a race with another verifier over the upload object
# (409 `conflict`: "changed while it was checked") is asked again, it is idempotent.
WAIT_FOR_VARIANT = frozenset({"variant_not_ready"})
VERIFY_AGAIN = frozenset({"conflict"})


def retryable(error: ApiError, also: frozenset[str] = frozenset()) -> bool:
    """429, 503, a verification in progress, and the codes in `also`."""
    if isinstance(error, RateLimited | BackendUnavailable | VerificationInProgress):
        return True
    return error.code in also


def storage_retryable(error: StorageError) -> bool:
    """S3's 500, 502, 503 (SlowDown) and 504 are worth another try."""
    return error.status in (500, 502, 503, 504)


def transport_retryable(exc: httpx.TransportError, idempotent: bool) -> bool:
    """A connection that never opened can always be retried; others only for idempotent calls."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return True
    return idempotent and not isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError)


def is_server_error(error: ApiError) -> bool:
    """5xx (retried for idempotent calls, 503 always)."""
    return isinstance(error, ServerError)


# ---------------------------------------------------------------------------------- bodies


def without_none(values: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that have a value."""
    return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class UploadMeta:
    """What describes an image besides its bytes."""

    content_type: str
    filename: str | None
    size: int
    tags: tuple[str, ...]
    description: str | None
    user_id: str | None

    def upload_body(self) -> dict[str, Any]:
        """`POST /images/upload`'s body."""
        return without_none(
            {
                "user_id": self.user_id,
                "content_type": self.content_type,
                "tags": list(self.tags) or None,
                "description": self.description,
                "filename": self.filename,
                "size": self.size,
            }
        )

    def multipart_body(self) -> dict[str, Any]:
        """`POST /s3/multipart`'s body (Companion's: filename, type, metadata)."""
        metadata = without_none(
            {
                "user_id": self.user_id,
                "tags": list(self.tags) or None,
                "description": self.description,
                "size": self.size,
            }
        )
        return without_none(
            {"filename": self.filename, "type": self.content_type, "metadata": metadata}
        )


@dataclass(frozen=True)
class FormBody:
    """A `multipart/form-data` body for S3's POST: the policy's fields, then the file last."""

    head: bytes
    tail: bytes
    content_type: str

    @classmethod
    def build(cls, fields: Mapping[str, str], filename: str | None, file_type: str) -> FormBody:
        """The bytes around the file, with a fresh boundary."""
        boundary = f"cis-{secrets.token_hex(16)}"
        lines: list[bytes] = []
        for name, value in fields.items():
            lines.append(f"--{boundary}\r\n".encode())
            lines.append(f'Content-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'.encode())
            lines.append(f"{value}\r\n".encode())
        name = _quoted(filename or "upload")
        lines.append(f"--{boundary}\r\n".encode())
        lines.append(f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'.encode())
        lines.append(f"Content-Type: {file_type}\r\n\r\n".encode())
        tail = f"\r\n--{boundary}--\r\n".encode()
        return cls(b"".join(lines), tail, f"multipart/form-data; boundary={boundary}")

    def length(self, size: int) -> int:
        """The whole body's length with a file of `size` bytes."""
        return len(self.head) + size + len(self.tail)


def _quoted(text: str) -> str:
    return "".join(c for c in text if c.isprintable() and c not in '"\\\r\n')


# ---------------------------------------------------------------------------------- parts


@dataclass(frozen=True)
class Part:
    """One part of a multipart upload: its number (from 1) and byte range."""

    number: int
    offset: int
    length: int


def part_size_for(size: int, suggested: int) -> int:
    """The service's part size, raised when the file would need more than 10,000 parts."""
    part = max(MIN_PART_BYTES, suggested)
    if math.ceil(size / part) > MAX_PARTS:
        part = math.ceil(size / MAX_PARTS / MiB) * MiB
    return part


def layout(size: int, part_size: int) -> list[Part]:
    """The parts of `size` bytes (one empty part for an empty file)."""
    count = max(1, math.ceil(size / part_size))
    return [Part(n + 1, n * part_size, min(part_size, size - n * part_size)) for n in range(count)]


def held_parts(listing: Iterable[Mapping[str, Any]], parts: list[Part]) -> dict[int, str]:
    """The ETags of the parts S3 holds whole (the size each should have), by number."""
    expected = {part.number: part.length for part in parts}
    return {
        int(item["PartNumber"]): str(item["ETag"])
        for item in listing
        if expected.get(int(item["PartNumber"])) == int(item["Size"])
    }


def sign_window(number: int, missing: list[int], signed: Iterable[int]) -> list[int]:
    """The part numbers to sign with `number`: it and the next unsigned ones, a batch."""
    have = set(signed)
    start = missing.index(number) if number in missing else 0
    window = [n for n in missing[start:] if n not in have][:SIGN_BATCH]
    return window if number in window else [number, *window[: SIGN_BATCH - 1]]


# ---------------------------------------------------------------------------------- progress


class ProgressTracker:
    """Bytes sent so far, reported to a callback `(bytes_sent, total)`; thread-safe.

    An exception raised by the callback propagates to the code that sent the bytes: it
    interrupts the upload (a multipart upload can then be resumed).
    """

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self.sent = 0
        self.callback = callback
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        """`count` more bytes sent (negative: a failed attempt's, to be sent again)."""
        with self._lock:
            self.sent += count
            if self.callback is not None:
                self.callback(self.sent, self.total)


# ---------------------------------------------------------------------------------- downloads

_FILENAME_STAR = re.compile(r"filename\*\s*=\s*([^']*)'[^']*'([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename\s*=\s*"?([^";]+)"?', re.IGNORECASE)


def filename_from_disposition(header: str | None) -> str | None:
    """The base name a `Content-Disposition` header gives (RFC 6266/5987), sanitized."""
    if not header:
        return None
    match = _FILENAME_STAR.search(header)
    name = unquote(match.group(2), encoding=match.group(1) or "utf-8") if match else None
    if name is None and (plain := _FILENAME.search(header)):
        name = plain.group(1)
    if not name:
        return None
    name = Path(name.replace("\\", "/")).name.strip()
    return name if name not in ("", ".", "..") else None


def download_target(dest: str | os.PathLike[str], header: str | None, fallback: str) -> Path:
    """Where a download goes: `dest`, or inside it when it is a directory: an existing one,
    or one named with a trailing separator (`thumbs/`), then made with its parents."""
    name = os.fspath(dest)
    path = Path(name)
    if name.endswith((os.sep, os.altsep or os.sep)):
        path.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        return path / (filename_from_disposition(header) or fallback)
    return path
