"""`cis upload`: many files at once, duplicates skipped, progress bars, resumable."""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from cloud_image_client import Client, ImageRejected
from cloud_image_client.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Config,
    describe,
    human_bytes,
    one_line,
    one_line_errors,
)
from cloud_image_client.cli.files import sha256_file, shown
from cloud_image_client.models import Image

STORED, DUPLICATE, REJECTED, FAILED, INTERRUPTED = (
    "stored",
    "duplicate",
    "rejected",
    "failed",
    "interrupted",
)


class Cancelled(Exception):
    """Raised in a worker once Ctrl-C was pressed: its upload stops (and can be resumed)."""


@dataclass(frozen=True)
class Options:
    """`cis upload`'s options."""

    tags: tuple[str, ...]
    description: str | None
    user: str | None
    concurrency: int
    json: bool
    progress: bool


@dataclass
class Outcome:
    """What became of one file."""

    path: Path
    status: str
    size: int
    sha256: str | None = None
    image: Image | None = None
    reason: str | None = None
    image_id: str | None = None
    token: int = field(default=0, repr=False)  # the display's handle of the file

    def to_json(self) -> dict[str, Any]:
        """The file's line of `--json`."""
        return {
            "path": str(self.path),
            "status": self.status,
            "image_id": self.image.image_id if self.image else self.image_id,
            "sha256": self.sha256,
            "size": self.size,
            "reason": self.reason,
            "image": self.image.to_json() if self.image else None,
        }


class Display(Protocol):
    """How progress and results are shown."""

    def start(self, path: Path, size: int) -> int:
        """A file begins (from a worker thread): its handle."""
        ...

    def advance(self, token: int, sent: int) -> None:
        """`sent` bytes of the file are out (from a worker thread)."""
        ...

    def finish(self, outcome: Outcome, token: int) -> None:
        """The file is done (from the main thread): show its result."""
        ...

    def __enter__(self) -> Display: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


def result_line(outcome: Outcome) -> str | None:
    """The line a file gets (None for a duplicate: they are counted in the summary)."""
    name = shown(outcome.path)
    if outcome.status == STORED and outcome.image is not None:
        image = outcome.image
        pixels = f", {image.width}x{image.height}" if image.width else ""
        return f"stored   {name} as {image.image_id} ({human_bytes(image.size)}{pixels})"
    if outcome.status == REJECTED:
        return f"rejected {name}: {one_line(outcome.reason or 'rejected')}"
    if outcome.status == FAILED:
        return f"failed   {name}: {one_line(outcome.reason or 'failed')}"
    return None


class PlainDisplay:
    """One line per file on stdout (or one JSON object per file with `--json`)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def __enter__(self) -> PlainDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def start(self, path: Path, size: int) -> int:
        return 0

    def advance(self, token: int, sent: int) -> None:
        return None

    def finish(self, outcome: Outcome, token: int) -> None:
        if outcome.status == INTERRUPTED:
            return
        line = json.dumps(outcome.to_json()) if self.as_json else result_line(outcome)
        if line is not None:
            print(line, flush=True)


class BarsDisplay:
    """A bar per file in flight and a total bar (bytes/s, ETA), results printed above them."""

    def __init__(self, console: Console, total_bytes: int, count: int) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(bar_width=30),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.count = count
        self.done = 0
        self.total = self.progress.add_task(self._label(), total=max(1, total_bytes))
        self.sent: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.sizes: dict[int, int] = {}
        self.lock = threading.Lock()

    def _label(self) -> str:
        return f"[bold]total[/] {self.done}/{self.count} files"

    def __enter__(self) -> BarsDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, path: Path, size: int) -> int:
        name = path.name if len(path.name) <= 32 else f"{path.name[:29]}..."
        task = self.progress.add_task(name.replace("[", r"\["), total=max(1, size))
        with self.lock:
            self.sent[task] = 0
            self.names[task] = name.replace("[", r"\[")
            self.sizes[task] = size
        return task

    def advance(self, token: int, sent: int) -> None:
        with self.lock:
            delta = sent - self.sent.get(token, 0)
            self.sent[token] = sent
            name = self.names.get(token, "")
            size = self.sizes.get(token, 0)
        task = TaskID(token)
        if sent >= size:  # every byte sent: the service verifies the image now
            self.progress.update(task, completed=sent, description=f"{name} [dim]verifying[/]")
        else:
            self.progress.update(task, completed=sent)
        self.progress.advance(self.total, delta)

    def finish(self, outcome: Outcome, token: int) -> None:
        with self.lock:
            sent = self.sent.pop(token, 0)
            self.names.pop(token, None)
            self.sizes.pop(token, None)
        self.progress.remove_task(TaskID(token))
        if outcome.status == INTERRUPTED:
            return
        self.progress.advance(self.total, outcome.size - sent)  # skipped bytes count as done
        self.done += 1
        self.progress.update(self.total, description=self._label())
        line = result_line(outcome)
        if line is not None:
            self.progress.console.print(line, markup=False, highlight=False)


@dataclass
class Tally:
    """Counts by status, and the bytes sent."""

    counts: dict[str, int] = field(default_factory=dict)
    sent_bytes: int = 0

    def add(self, outcome: Outcome) -> None:
        """Count one file's outcome."""
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        if outcome.status == STORED:
            self.sent_bytes += outcome.size

    def get(self, status: str) -> int:
        """Files with this status."""
        return self.counts.get(status, 0)

    def summary(self, seconds: float) -> str:
        """The closing line: counts by status, bytes sent and the rate."""
        rate = self.sent_bytes / seconds if seconds > 0 else 0.0
        parts = [
            f"{self.get(STORED)} stored",
            f"{self.get(DUPLICATE)} skipped (already stored)",
            f"{self.get(REJECTED)} rejected",
            f"{self.get(FAILED)} failed",
        ]
        return (
            f"{', '.join(parts)} in {seconds:.1f} s "
            f"({human_bytes(self.sent_bytes)} sent, {human_bytes(rate)}/s)"
        )


def upload_one(
    client: Client, path: Path, options: Options, display: Display, cancel: threading.Event
) -> Outcome:
    """Hash, look for a duplicate, upload; every failure becomes the file's outcome."""
    try:
        size = path.stat().st_size
    except OSError as error:
        return Outcome(path, FAILED, 0, reason=describe(error))
    token = display.start(path, size)
    outcome = Outcome(path, FAILED, size, token=token)

    def progress(sent: int, total: int) -> None:
        if cancel.is_set():
            raise Cancelled
        display.advance(token, sent)

    try:
        if cancel.is_set():
            raise Cancelled
        outcome.sha256 = sha256_file(path)
        found = client.find_by_sha256(outcome.sha256, options.user)
        if found:
            outcome.status, outcome.image = DUPLICATE, found[0]
            return outcome
        if cancel.is_set():
            raise Cancelled
        outcome.image = client.upload(
            path,
            tags=options.tags,
            description=options.description,
            user_id=options.user,
            progress=progress,
        )
        outcome.status = STORED
    except Cancelled:
        outcome.status = INTERRUPTED
    except ImageRejected as error:
        outcome.status, outcome.reason, outcome.image_id = REJECTED, error.reason, error.image_id
    except Exception as error:
        outcome.reason = describe(error)
    return outcome


def make_display(options: Options, files: list[Path]) -> Display:
    """Bars on a terminal (unless --json or --no-progress), else plain lines."""
    console = Console()
    if options.progress and not options.json and console.is_terminal:
        total = 0
        for path in files:
            try:
                total += path.stat().st_size
            except OSError:
                continue
        return BarsDisplay(console, total, len(files))
    return PlainDisplay(options.json)


def run_upload(config: Config, files: list[Path], options: Options) -> int:
    """Upload the files, `options.concurrency` at a time; the exit code."""
    config.require_user(options.user)
    started = time.monotonic()
    tally = Tally()
    cancel = threading.Event()
    with config.client() as client:
        with one_line_errors():  # unreachable, or a credential refused: one line, exit 2
            client.list_page(user_id=options.user, limit=1)
        with make_display(options, files) as display:
            pool = ThreadPoolExecutor(options.concurrency, thread_name_prefix="cis-upload")
            futures: list[Future[Outcome]] = [
                pool.submit(upload_one, client, path, options, display, cancel) for path in files
            ]
            try:
                for future in as_completed(futures):
                    outcome = future.result()
                    tally.add(outcome)
                    display.finish(outcome, outcome.token)
            except KeyboardInterrupt:
                cancel.set()  # uploads in flight stop at their next chunk
                pool.shutdown(wait=True, cancel_futures=True)
                stored = tally.get(STORED) + tally.get(DUPLICATE)
                print(
                    f"cis: interrupted: {stored} of {len(files)} files stored; run the same "
                    "command again to skip them and resume the multipart uploads",
                    file=sys.stderr,
                    flush=True,
                )
                return EXIT_INTERRUPTED
            pool.shutdown(wait=True)
    summary = tally.summary(time.monotonic() - started)
    print(summary, file=sys.stderr if options.json else sys.stdout, flush=True)
    return EXIT_FAILED if tally.get(REJECTED) or tally.get(FAILED) else EXIT_OK
