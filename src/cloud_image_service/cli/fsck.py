"""`cloud-image-service fsck`: is the bucket consistent with the catalog?"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cloud_image_service.background.fsck import KINDS, Checker, Problem
from cloud_image_service.domain.errors import ServiceError
from cloud_image_service.runtime import Runtime

RuntimeFactory = Callable[[], Runtime | None]

EXIT_CONSISTENT, EXIT_PROBLEMS, EXIT_FAILED = 0, 1, 2


@contextmanager
def _progress() -> Iterator[Callable[[str, int], None]]:
    """A live counter on stderr when it is a terminal; nothing otherwise."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda _what, _count: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting")
        yield lambda what, count: bar.update(task, description=f"{what}: {count:,}")


def _report(problems: list[Problem], as_json: bool, repaired: bool) -> None:
    counts = Counter(problem.kind for problem in problems)
    if as_json:
        document = {
            "problems": [
                {
                    "kind": p.kind,
                    "image_id": p.image_id,
                    "key": p.key,
                    "detail": p.detail,
                    "action": p.action,
                }
                for p in problems
            ],
            "counts": {kind: counts.get(kind, 0) for kind in KINDS},
            "repaired": repaired,
        }
        print(json.dumps(document, indent=2))
        return
    for p in problems:
        print(f"{p.kind}\t{p.image_id or '-'}\t{p.key or '-'}\t{p.detail}\t{p.action}")
    summary = ", ".join(f"{kind}: {n}" for kind, n in sorted(counts.items())) or "no problems"
    print(f"fsck: {summary}", file=sys.stderr)


def run(args: argparse.Namespace, make_runtime: RuntimeFactory) -> int:
    """Check (and with --repair, fix); exit 0 consistent, 1 problems left, 2 could not run."""
    try:
        runtime = make_runtime()
        if runtime is None:
            return EXIT_FAILED
        settings = runtime.settings
        min_age = args.min_age
        if min_age is None:  # an upload URL's lifetime, plus how long its record waits
            min_age = settings.presign_ttl_seconds + settings.pending_ttl_seconds
        with _progress() as progress:
            checker = Checker(runtime.service, min_age, deep=args.deep, progress=progress)
            problems = checker.check()
            if args.repair and problems:
                problems = checker.repair(problems)
    except ServiceError as exc:
        print(f"fsck could not run: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    _report(problems, args.json, args.repair)
    left = [p for p in problems if not args.repair or not _fixed(p)]
    return EXIT_PROBLEMS if left else EXIT_CONSISTENT


def _fixed(problem: Problem) -> bool:
    return not problem.action.startswith(("failed", "none"))


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], make_runtime: RuntimeFactory
) -> None:
    """Register `fsck` on the root parser's sub-parsers."""
    fsck = commands.add_parser(
        "fsck",
        help="compare the bucket with the catalog (exit 0 consistent, 1 problems, 2 failed)",
    )
    fsck.add_argument("--deep", action="store_true", help="re-read originals and re-hash them")
    fsck.add_argument("--repair", action="store_true", help="fix what is found (re-checked first)")
    fsck.add_argument("--json", action="store_true", help="one JSON document on stdout")
    fsck.add_argument(
        "--min-age",
        type=int,
        metavar="SECONDS",
        help="skip younger objects and records (default: URL lifetime + pending TTL)",
    )
    fsck.set_defaults(handler=lambda args: run(args, make_runtime))
