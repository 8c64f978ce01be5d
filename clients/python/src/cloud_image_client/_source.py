"""What `upload` sends: a file (read by ranges, thread-safe) or bytes in memory."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from cloud_image_client.sniff import HEAD_BYTES

CHUNK_BYTES = 256 * 1024  # progress is reported, and a cancel noticed, per chunk
HASH_CHUNK_BYTES = 1024 * 1024

PathOrBytes = str | os.PathLike[str] | bytes | bytearray | memoryview


class Source:
    """The bytes of one upload, from a path or from memory, with its name and size."""

    def __init__(self, what: PathOrBytes, filename: str | None = None) -> None:
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        self._data: bytes | None = None
        self.path: Path | None = None
        self.mtime_ns = 0
        self._sha256: str | None = None
        if isinstance(what, bytes | bytearray | memoryview):
            self._data = bytes(what)
            self.size = len(self._data)
            self.name = filename
        else:
            self.path = Path(what).expanduser().resolve()
            stat = self.path.stat()  # FileNotFoundError for a missing path, as open() would
            if not self.path.is_file():
                raise IsADirectoryError(f"not a file: {self.path}")
            self.size = stat.st_size
            self.mtime_ns = stat.st_mtime_ns
            self.name = filename or self.path.name

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file, if one was opened."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def read(self, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (fewer at the end)."""
        if self._data is not None:
            return self._data[offset : offset + length]
        assert self.path is not None
        with self._lock:
            if self._file is None:
                self._file = self.path.open("rb")
            self._file.seek(offset)
            return self._file.read(length)

    def head(self) -> bytes:
        """The first bytes, to tell the type."""
        return self.read(0, HEAD_BYTES)

    def chunks(self, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The range in chunks of CHUNK_BYTES (the whole source by default)."""
        end = self.size if length is None else min(self.size, offset + length)
        while offset < end:
            chunk = self.read(offset, min(CHUNK_BYTES, end - offset))
            if not chunk:
                raise OSError(f"{self.name}: file shrank while it was read")
            offset += len(chunk)
            yield chunk

    def sha256(self) -> str:
        """Hex SHA-256 of all the bytes (computed once)."""
        if self._sha256 is None:
            digest = hashlib.sha256()
            offset = 0
            while offset < self.size:
                chunk = self.read(offset, HASH_CHUNK_BYTES)
                if not chunk:
                    break
                digest.update(chunk)
                offset += len(chunk)
            self._sha256 = digest.hexdigest()
        return self._sha256

    def identity(self) -> str:
        """What a resumable upload is keyed by: path, size and mtime; bytes: their SHA-256."""
        if self.path is not None:
            return f"file:{self.path}:{self.size}:{self.mtime_ns}"
        return f"bytes:{self.sha256()}"
