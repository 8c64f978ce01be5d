"""What every `cis` command shares: configuration, exit codes, one-line errors, formatting."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn

import typer

from cloud_image_client import (
    ApiError,
    Client,
    CloudImageError,
    Forbidden,
    ServiceUnreachable,
    Unauthorized,
)

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV, TOKEN_ENV, API_KEY_ENV = "CIS_URL", "CIS_TOKEN", "CIS_API_KEY"

EXIT_OK = 0  # everything asked for was done
EXIT_FAILED = 1  # some file failed, was rejected, is missing; an image not found
EXIT_USAGE = 2  # usage or configuration: bad option, bad URL, unreachable, credential refused
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: stdout's reader went away (`cis ls | head -1`)


@dataclass(frozen=True)
class Config:
    """Where the service is and the credential (from `--url`/`CIS_URL`, `CIS_TOKEN`,
    `CIS_API_KEY`)."""

    url: str
    token: str | None
    api_key: str | None

    @classmethod
    def load(cls, url: str | None) -> Config:
        """The options and the environment; `--url` wins over CIS_URL."""
        return cls(
            url=url or os.environ.get(URL_ENV) or DEFAULT_URL,
            token=os.environ.get(TOKEN_ENV) or None,
            api_key=os.environ.get(API_KEY_ENV) or None,
        )

    @property
    def authenticated(self) -> bool:
        """A credential is configured."""
        return bool(self.token or self.api_key)

    def client(self, part_concurrency: int = 4) -> Client:
        """An SDK client; a bad URL is a usage error."""
        try:
            return Client(
                self.url,
                token=self.token,
                api_key=self.api_key,
                part_concurrency=part_concurrency,
            )
        except ValueError as exc:
            fail(f"invalid URL {self.url!r} (--url or {URL_ENV}): {exc}", EXIT_USAGE)

    def require_user(self, user: str | None) -> None:
        """Without a credential the service runs without authentication: `--user` names whose."""
        if user is None and not self.authenticated:
            fail(
                f"no credential ({TOKEN_ENV} or {API_KEY_ENV}) and no --user: set one, or "
                "name the user with --user where the service runs without authentication",
                EXIT_USAGE,
            )


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print `cis: message` on stderr and exit."""
    print(f"cis: {one_line(message)}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def one_line(text: str) -> str:
    """A message on one line."""
    return " ".join(text.split())


def describe(error: BaseException) -> str:
    """An error in one line, without the HTTP details a user does not need twice."""
    if isinstance(error, ApiError):
        return error.message
    if isinstance(error, OSError) and error.strerror:
        name = f": {error.filename}" if error.filename else ""
        return f"{error.strerror.lower()}{name}"
    return str(error) or type(error).__name__


def exit_code_of(error: BaseException) -> int:
    """Unreachable service, refused credential, bad configuration: 2; anything else: 1."""
    if isinstance(error, ServiceUnreachable | Unauthorized | Forbidden | ValueError):
        return EXIT_USAGE
    return EXIT_FAILED


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Any error of the SDK (or of a file) ends the command with one line, never a traceback."""
    try:
        yield
    except BrokenPipeError:  # stdout closed early: no message (`main.closed_stdout`)
        raise
    except (CloudImageError, OSError, ValueError) as error:
        fail(describe(error), exit_code_of(error))


def human_bytes(count: float | None) -> str:
    """`1.5 MiB`."""
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
