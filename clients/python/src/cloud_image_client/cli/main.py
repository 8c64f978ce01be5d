"""`cis`: upload, list, inspect, download, delete and check images from a shell."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console, JustifyMethod
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table
from typer.core import TyperGroup

from cloud_image_client import ApiError, Image, NotFound
from cloud_image_client.cli.check import run_check
from cloud_image_client.cli.common import (
    API_KEY_ENV,
    DEFAULT_URL,
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    TOKEN_ENV,
    URL_ENV,
    Config,
    describe,
    fail,
    human_bytes,
    one_line_errors,
)
from cloud_image_client.cli.files import PathProblem, collect
from cloud_image_client.cli.upload import Options, run_upload

HELP = f"""Upload, list, download and check images of a Cloud Image Service.

The service is --url or ${URL_ENV} (default {DEFAULT_URL}); the credential ${TOKEN_ENV}
(a JWT) or ${API_KEY_ENV}. Exit codes: 0 done, 1 some file failed, was rejected or is
missing, 2 usage or configuration error (bad option, service unreachable, credential
refused), 130 interrupted, 141 standard output closed early (`cis ls | head -1`).
"""


class Commands(TyperGroup):
    """`cis`'s commands: a closed standard output ends any of them quietly."""

    def invoke(self, ctx: Any) -> Any:  # a Context of the click Typer bundles
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # before Typer, which would make it exit 1
            closed_stdout()


app = typer.Typer(
    cls=Commands,
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

Url = Annotated[
    str | None,
    typer.Option("--url", help=f"The service's URL (${URL_ENV}, default {DEFAULT_URL})."),
]
User = Annotated[
    str | None,
    typer.Option(
        "--user",
        "-u",
        help="Whose images: needed where the service runs without authentication "
        f"(with ${TOKEN_ENV} or ${API_KEY_ENV}: the credential's user).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]
Status = Annotated[
    str | None,
    typer.Option(
        "--status", help="ready (default), pending, rejected, trashed or all.", show_default=False
    ),
]


def _config(ctx: typer.Context, url: str | None) -> Config:
    """`--url` of the command, else of `cis` itself (or $CIS_URL), else the default."""
    given = url or (ctx.obj or {}).get("url")
    return Config.load(given)


def _files(paths: list[str]) -> list[Path]:
    try:
        files = collect(paths)
    except PathProblem as problem:
        fail(str(problem), EXIT_USAGE)
    if not files:
        fail(f"no image files in {' '.join(paths)}", EXIT_USAGE)
    return files


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", envvar=URL_ENV, help=f"The service's URL (default {DEFAULT_URL})."),
    ] = None,
) -> None:
    """Upload, list, download and check images of a Cloud Image Service."""
    ctx.obj = {"url": url}


@app.command()
def upload(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Files, folders (recursive), globs.")],
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="A tag (repeatable).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Description of every file.")] = None,
    user: User = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, max=64, help="Files in flight.")
    ] = 4,
    as_json: Json = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bars.")] = False,
    url: Url = None,
) -> None:
    """Upload files; those already stored (same SHA-256) are skipped, interrupted multipart
    uploads resume. Folders give their image files (by extension, hidden ones left out)."""
    config = _config(ctx, url)
    options = Options(
        tags=tuple(tag or ()),
        description=description,
        user=user,
        concurrency=concurrency,
        json=as_json,
        progress=not no_progress,
    )
    raise typer.Exit(run_upload(config, _files(paths), options))


def _table(images: list[Image]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("ID", "FILE", "TYPE", "SIZE", "PIXELS", "STATUS", "TAGS", "CREATED"):
        justify: JustifyMethod = "right" if name in ("SIZE", "PIXELS") else "left"
        table.add_column(name, justify=justify, no_wrap=name in ("ID", "CREATED"))
    for image in images:
        pixels = f"{image.width}x{image.height}" if image.width else "-"
        table.add_row(
            image.image_id,
            image.filename or "-",
            image.content_type.removeprefix("image/"),
            human_bytes(image.size),
            pixels,
            image.status,
            ",".join(image.tags),
            image.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    return table


class _Console(Console):
    """Rich's console on stdout; closed early, it ends as the commands do (141, not Rich's 1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        closed_stdout()


def _console() -> Console:
    console = _Console(highlight=False)
    return console if console.is_terminal else _Console(highlight=False, width=250)


@app.command("ls")
def list_images(
    ctx: typer.Context,
    user: User = None,
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only this tag.")] = None,
    status: Status = None,
    as_json: Json = False,
    url: Url = None,
) -> None:
    """List images (every page), newest first for one user."""
    config = _config(ctx, url)
    with config.client() as client, one_line_errors():
        images = []
        for image in client.images(user_id=user, tag=tag, status=status, page_size=100):
            if as_json:
                print(json.dumps(image.to_json()), flush=True)
            else:
                images.append(image)
    if not as_json:
        _console().print(_table(images))
        print(f"{len(images)} images", file=sys.stderr)


@app.command()
def info(
    ctx: typer.Context,
    image_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: Json = False,
    url: Url = None,
) -> None:
    """Show one image's record."""
    config = _config(ctx, url)
    with config.client() as client, one_line_errors():
        image = client.get(image_id)
    if as_json:
        print(json.dumps(image.to_json(), indent=2))
        return
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in image.to_json().items():
        if name == "variants":
            value = ", ".join(
                f"{n} {v['width']}x{v['height']} {human_bytes(v['size'])}"
                for n, v in (value or {}).items()
            )
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        table.add_row(name, "-" if value in (None, "") else str(value))
    _console().print(table)


@app.command()
def get(
    ctx: typer.Context,
    image_id: Annotated[str, typer.Argument(metavar="ID")],
    output: Annotated[
        str | None,  # a str: a Path would lose the trailing "/" of a folder to be made
        typer.Option(
            "--output",
            "-o",
            help="File or folder (a folder named with a trailing / is made if missing; "
            "default: here, the image's name).",
        ),
    ] = None,
    variant: Annotated[
        str | None, typer.Option("--variant", help="A variant (thumb, preview, ...).")
    ] = None,
    url: Url = None,
) -> None:
    """Download an image (or one of its variants)."""
    config = _config(ctx, url)
    console = Console(stderr=True)
    bar = Progress(
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with config.client() as client, one_line_errors(), bar:
        task = bar.add_task("download", total=None)

        def progress(received: int, total: int) -> None:
            bar.update(task, completed=received, total=total or None)

        path = client.download(image_id, output or Path.cwd(), variant, progress=progress)
    print(f"saved {path} ({human_bytes(path.stat().st_size)})")


@app.command("rm")
def remove(
    ctx: typer.Context,
    image_ids: Annotated[list[str], typer.Argument(metavar="ID...")],
    url: Url = None,
) -> None:
    """Delete images."""
    config = _config(ctx, url)
    failed = 0
    with config.client() as client, one_line_errors():
        for image_id in image_ids:
            try:
                client.delete(image_id)
            except NotFound:
                failed += 1
                print(f"cis: {image_id}: not found", file=sys.stderr)
                continue
            except ApiError as error:
                if error.status in (401, 403):
                    raise
                failed += 1
                print(f"cis: {image_id}: {describe(error)}", file=sys.stderr)
                continue
            print(f"deleted {image_id}")
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


@app.command()
def check(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(metavar="DIR...", help="Folders or files.")],
    user: User = None,
    as_json: Json = False,
    url: Url = None,
) -> None:
    """Mark each local file stored, missing or different (by SHA-256); exit 1 if any file
    is missing or different."""
    config = _config(ctx, url)
    raise typer.Exit(run_check(config, _files(paths), user, as_json))


def closed_stdout() -> NoReturn:
    """Standard output's reader went away (`cis ls --json | head -1`): end at once, without
    a message, with 141 (128 + SIGPIPE), the status a shell sees from `ls`, `rclone` and
    other tools killed by SIGPIPE. What is still buffered goes to /dev/null, so Python's
    flush at exit does not fail again."""
    with contextlib.suppress(OSError, ValueError):  # not a file descriptor (CliRunner)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(EXIT_BROKEN_PIPE)


def main() -> None:
    """The console script `cis`: anything unexpected is still one line, never a traceback;
    a closed standard output ends quietly with 141 (`closed_stdout`)."""
    try:
        try:
            app(prog_name="cis")
        finally:
            sys.stdout.flush()  # now, not at exit, where a broken pipe would be reported
    except BrokenPipeError:
        closed_stdout()
    except Exception as error:  # a bug or an answer the SDK did not expect
        print(f"cis: unexpected error: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
