"""`cloud-image-service variants backfill`: make the variants ready images lack.

After a name is added to CIS_VARIANTS, or after variant jobs gave up. Idempotent (an
image with every variant is skipped) and safe while the service runs: a variant made
twice is the same object, and records are updated only while the image is ready.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cloud_image_service.domain.errors import ServiceError
from cloud_image_service.domain.models import Image, ListQuery, Status
from cloud_image_service.domain.variants import VariantMaker
from cloud_image_service.runtime import Runtime

RuntimeFactory = Callable[[], Runtime | None]


@dataclass
class Counts:
    """What a backfill did."""

    checked: int = 0
    incomplete: int = 0
    made: int = 0
    failed: int = 0


def _images(runtime: Runtime, user: str | None) -> Iterator[Image]:
    """Ready (and trashed) images: one user's by the index, or every record by a Scan."""
    catalog = runtime.catalog
    if user is None:
        for records in catalog.scan():
            yield from (i for i in records if i.status in (Status.READY, Status.TRASHED))
        return
    query = ListQuery(user_id=user, statuses=(Status.READY, Status.TRASHED))
    start = None
    while True:
        page = catalog.list_page(query, 100, start)
        yield from page.items
        if page.next_key is None:
            return
        start = page.next_key


def backfill(
    maker: VariantMaker, images: Iterator[Image], dry_run: bool, tick: Callable[[], None]
) -> Counts:
    """Make what is missing, image by image; the counts of what happened."""
    counts = Counts()
    for image in images:
        counts.checked += 1
        missing = maker.missing(image)
        if missing or image.placeholder is None:
            counts.incomplete += 1
            if not dry_run:
                after = maker.make(image)
                still = maker.missing(after)
                counts.made += len(missing) - len(still)
                counts.failed += 1 if still or after.placeholder is None else 0
        tick()
    return counts


def run(args: argparse.Namespace, make_runtime: RuntimeFactory) -> int:
    """Exit 0 when every ready image has every variant (or would, with --dry-run), else 1."""
    try:
        runtime = make_runtime()
        if runtime is None:
            return 2
        maker = runtime.service.variants
        if maker is None:
            print("variants: CIS_VARIANTS is empty: nothing to make", file=sys.stderr)
            return 0
        console = Console(stderr=True)
        columns = (TextColumn("images"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
            task = bar.add_task("backfill", total=None)
            counts = backfill(
                maker, _images(runtime, args.user), args.dry_run, lambda: bar.advance(task)
            )
    except ServiceError as exc:
        print(f"variants backfill could not run: {exc.message}", file=sys.stderr)
        return 2
    verb = "would make variants for" if args.dry_run else "made"
    print(
        f"backfill: {counts.checked} images checked, {counts.incomplete} lacked variants; "
        + (
            f"{verb} {counts.incomplete} images"
            if args.dry_run
            else f"{verb} {counts.made} variants, {counts.failed} images failed"
        )
    )
    return 1 if counts.failed else 0


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], make_runtime: RuntimeFactory
) -> None:
    """Register `variants backfill` on the root parser's sub-parsers."""
    variants = commands.add_parser("variants", help="thumbnails and previews (CIS_VARIANTS)")
    actions = variants.add_subparsers(dest="variants_command", required=True)
    backfill_cmd = actions.add_parser("backfill", help="make the variants ready images lack")
    backfill_cmd.add_argument("--user", help="only this user's images (by the user index)")
    backfill_cmd.add_argument(
        "--dry-run", action="store_true", help="count what is missing, make nothing"
    )
    backfill_cmd.set_defaults(handler=lambda args: run(args, make_runtime))
