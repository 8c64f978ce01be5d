"""The local files a command works on: named files, folders (recursively) and globs."""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Iterable
from pathlib import Path

from cloud_image_client.sniff import IMAGE_SUFFIXES


class PathProblem(ValueError):
    """A path argument that names nothing usable (a usage error)."""


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def folder_images(folder: Path) -> list[Path]:
    """Files under a folder with an image extension, hidden files and folders left out,
    sorted."""
    found = [
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not _hidden(path, folder)
    ]
    return sorted(found)


def collect(arguments: Iterable[str]) -> list[Path]:
    """The files the arguments name, each once, in the order given.

    A file is taken whatever its name; a folder gives its image files (by extension,
    recursively); a pattern the shell did not expand (`'photos/**/*.jpg'`) is expanded
    here. Anything else is a PathProblem.
    """
    chosen: dict[Path, None] = {}
    for argument in arguments:
        path = Path(argument).expanduser()
        if path.exists():
            matches = [path]
        elif glob.has_magic(argument):
            matches = [Path(p) for p in sorted(glob.glob(argument, recursive=True))]
            if not matches:
                raise PathProblem(f"no file matches {argument}")
        else:
            raise PathProblem(f"no such file or folder: {argument}")
        for match in matches:
            if match.is_dir():
                chosen.update(dict.fromkeys(p.resolve() for p in folder_images(match)))
            elif match.is_file():
                chosen[match.resolve()] = None
    return list(chosen)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def shown(path: Path, base: Path | None = None) -> str:
    """A path as the user sees it: relative to the current folder when it is below it."""
    base = base or Path.cwd()
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
