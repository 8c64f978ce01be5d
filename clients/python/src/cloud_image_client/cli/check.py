"""`cis check`: which local files the service holds (rclone check, by SHA-256).

Each file is `stored` (the user has a ready image with exactly its bytes), `different` (no
image has its bytes, but one has its file name: the file changed since it was uploaded, or
another file of that name was), or `missing` (neither). The user's ready images are listed
once (following cursors); the local files are hashed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from cloud_image_client.cli.common import EXIT_FAILED, EXIT_OK, Config, one_line_errors
from cloud_image_client.cli.files import sha256_file, shown
from cloud_image_client.models import Image

STORED, DIFFERENT, MISSING = "stored", "different", "missing"


@dataclass(frozen=True)
class Checked:
    """One local file's verdict; `image_id` is the matching (or same-name) image."""

    path: Path
    status: str
    sha256: str
    image_id: str | None

    def line(self) -> str:
        """The file's line in the plain output."""
        name = shown(self.path)
        if self.status == STORED:
            return f"stored    {name} ({self.image_id})"
        if self.status == DIFFERENT:
            return f"different {name} (image {self.image_id} has this name, other bytes)"
        return f"missing   {name}"


class Catalog:
    """The user's ready images by SHA-256 and by file name."""

    def __init__(self, images: list[Image]) -> None:
        self.by_sha: dict[str, Image] = {}
        self.by_name: dict[str, Image] = {}
        for image in images:
            if image.sha256:
                self.by_sha.setdefault(image.sha256, image)
            if image.filename:
                self.by_name.setdefault(image.filename, image)

    def check(self, path: Path) -> Checked:
        """Stored, different or missing."""
        digest = sha256_file(path)
        if digest in self.by_sha:
            return Checked(path, STORED, digest, self.by_sha[digest].image_id)
        if path.name in self.by_name:
            return Checked(path, DIFFERENT, digest, self.by_name[path.name].image_id)
        return Checked(path, MISSING, digest, None)


def run_check(config: Config, files: list[Path], user: str | None, as_json: bool) -> int:
    """Print a verdict per file and a count; 1 if any file is missing or different."""
    config.require_user(user)
    with config.client() as client, one_line_errors():
        catalog = Catalog(list(client.images(user_id=user, page_size=100)))
        results = []
        for path in files:
            checked = catalog.check(path)
            results.append(checked)
            if as_json:
                body = {
                    "path": str(path),
                    "status": checked.status,
                    "sha256": checked.sha256,
                    "image_id": checked.image_id,
                }
                print(json.dumps(body), flush=True)
            else:
                print(checked.line(), flush=True)
    counts = {status: 0 for status in (STORED, MISSING, DIFFERENT)}
    for checked in results:
        counts[checked.status] += 1
    summary = ", ".join(f"{count} {status}" for status, count in counts.items())
    print(f"{summary} (of {len(results)} files)", file=sys.stderr if as_json else sys.stdout)
    return EXIT_FAILED if counts[MISSING] or counts[DIFFERENT] else EXIT_OK
