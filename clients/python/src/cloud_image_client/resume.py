"""Where interrupted multipart uploads are remembered, so that the same call resumes them.

One small JSON file per upload in the state directory, named by a hash of the service URL,
the `user_id` given, the content type and the file's identity (its resolved path, size and
modification time; for bytes, their SHA-256). It holds the ids the service gave
(`image_id`, `key`, `uploadId`) and the part size, never a credential. It is written as
soon as the multipart upload starts and removed when the upload is completed or rejected
(or when the service no longer knows the upload): a file that changed gets a new key, so
its old parts are never reused. Files older than `MAX_AGE_S` are pruned.

The directory: `state_dir` of the client, else `$CIS_CLIENT_STATE_DIR`, else the user's
cache directory: `$XDG_CACHE_HOME/cloud-image-client/uploads` (`~/.cache/...`) on Linux,
`~/Library/Caches/cloud-image-client/uploads` on macOS,
`%LOCALAPPDATA%\\cloud-image-client\\uploads` on Windows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATE_DIR_ENV = "CIS_CLIENT_STATE_DIR"
MAX_AGE_S = 7 * 24 * 3600  # the service aborts a pending upload long before this
VERSION = 1


def default_state_dir() -> Path:
    """The per-user cache directory for upload state (see the module's docstring)."""
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "cloud-image-client" / "uploads"


@dataclass(frozen=True)
class UploadState:
    """An interrupted multipart upload: enough to list its parts and send the others."""

    base_url: str
    source: str  # Source.identity()
    size: int
    content_type: str
    image_id: str
    key: str
    upload_id: str
    part_size: int
    started_at: float
    version: int = VERSION

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadState:
        """From a state file's JSON; KeyError or TypeError when it is not one."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


class ResumeStore:
    """The state files of one directory."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_state_dir()

    @staticmethod
    def key(base_url: str, user_id: str | None, content_type: str, identity: str) -> str:
        """The state file's name (without `.json`) for one upload."""
        text = "\0".join((base_url, user_id or "", content_type, identity))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def path(self, key: str) -> Path:
        """The state file of a key."""
        return self.directory / f"{key}.json"

    def load(self, key: str) -> UploadState | None:
        """The saved state, or None (a file that cannot be read is dropped)."""
        path = self.path(key)
        try:
            state = UploadState.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            self.discard(key)
            return None
        return state if state.version == VERSION else None

    def save(self, key: str, state: UploadState) -> None:
        """Write the state atomically (a temporary file, then a rename)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._prune()
        path = self.path(key)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(asdict(state), indent=1) + "\n")
        os.replace(temporary, path)

    def discard(self, key: str) -> None:
        """Forget an upload (finished, rejected or unknown to the service)."""
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def pending(self) -> list[Path]:
        """The state files present: uploads that can be resumed."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.json"))

    def _prune(self) -> None:
        cutoff = time.time() - MAX_AGE_S
        for path in self.pending():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
