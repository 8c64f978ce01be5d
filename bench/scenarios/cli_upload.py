"""`cis upload` of a folder of ~1 MiB PNGs beside the bench's own raw upload loop.

Files of seeded RGB noise (`--cli-files`, 200; about 1 MiB each, distinct) are written to a
scratch folder twice over: one set for the raw loop, one for `cis`. The raw loop is what an
app does without the SDK: per file, read it, `POST /images/upload` (with `size`), the POST
form to S3, `POST /images/{id}/complete`, on `--cli-concurrency` (8) threads sharing one
keep-alive pool. Then `cis upload DIR --concurrency 8 --no-progress --json` runs as a
subprocess (CIS_URL, CIS_TOKEN: a token minted for its user), timed wall-clock from spawn to
exit: interpreter start, the duplicate lookup (sha256) of each file, uploads and completes.
The goal: `cis` within 15% of the raw loop's files/s. Both sets are deleted afterwards.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
from PIL import Image as PillowImage

from bench.harness import Target, http_client, progress
from bench.load import CLOCK_TICKS, cpu_ticks
from bench.plan import Plan
from bench.steps import (
    FailureCounter,
    FlowFailed,
    best_effort_delete,
    complete,
    post_form,
    presign,
    sha256_hex,
)

SIDE = 591  # 591 x 591 RGB noise: a PNG of about 1 MiB (1,048,800 bytes of pixels)
GOAL = 0.85  # the issue: cis within 15% of the raw loop
CLI_TIMEOUT_S = 900.0


def cis_path() -> Path:
    """The console script next to the running interpreter (`pip install -e clients/python`)."""
    return Path(sys.executable).with_name("cis")


@dataclass(frozen=True)
class Side:
    """One way of uploading the files: how fast, and what it cost the service."""

    files: int
    failed: int
    wall_s: float
    cpu_ms_per_file: float | None

    @property
    def files_per_s(self) -> float:
        """Files stored per second of wall time."""
        return (self.files - self.failed) / self.wall_s if self.wall_s > 0 else 0.0


@dataclass(frozen=True)
class CliUploadOutcome:
    """Both sides, or why the scenario did not run."""

    files: int
    mean_bytes: int
    concurrency: int
    raw: Side | None = None
    cli: Side | None = None
    cli_exit: int | None = None
    cli_statuses: dict[str, int] | None = None
    failures: dict[str, int] | None = None  # raw loop: reason -> count
    skipped: str | None = None

    @property
    def ratio(self) -> float | None:
        """cis files/s over the raw loop's."""
        if self.raw is None or self.cli is None or not self.raw.files_per_s:
            return None
        return self.cli.files_per_s / self.raw.files_per_s

    @property
    def failed(self) -> bool:
        """A file failed on either side (or cis exited non-zero)."""
        if self.skipped is not None:
            return False
        sides = (self.raw, self.cli)
        return any(s is None or s.failed for s in sides) or self.cli_exit != 0


def make_files(folder: Path, count: int, seed: int) -> list[Path]:
    """`count` distinct PNGs of seeded noise, about 1 MiB each."""
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    paths = []
    for index in range(count):
        path = folder / f"noise-{seed}-{index:04d}.png"
        pixels = rng.randbytes(SIDE * SIDE * 3)
        PillowImage.frombytes("RGB", (SIDE, SIDE), pixels).save(path, compress_level=1)
        paths.append(path)
    return paths


def raw_upload(
    client: httpx.Client,
    user_id: str,
    auth: dict[str, str],
    failures: FailureCounter,
    path: Path,
) -> str | None:
    """presign -> POST form -> complete for one file; its image id, or None if it failed."""
    data = path.read_bytes()
    try:
        image_id, upload = presign(client, user_id, data, path.name, ["bench", "raw"], auth)
        post_form(client, upload, data, path.name)
        complete(client, image_id, sha256_hex(data), auth)
    except FlowFailed as exc:
        failures.add(str(exc))
        return None
    return image_id


def raw_loop(
    target: Target, user_id: str, files: list[Path], concurrency: int, warmup: list[Path]
) -> tuple[Side, list[str], dict[str, int]]:
    """The raw loop over `files` (after an untimed warm-up over `warmup`)."""
    auth = target.auth.headers(user_id)
    failures = FailureCounter()
    with (
        http_client(target.base_url, 2 * concurrency) as client,
        ThreadPoolExecutor(concurrency) as pool,
    ):
        one = partial(raw_upload, client, user_id, auth, failures)
        made = list(pool.map(one, warmup))
        before = cpu_ticks(target.pid)
        start = time.perf_counter()
        made += list(pool.map(one, files))
        wall_s = time.perf_counter() - start
        after = cpu_ticks(target.pid)
    failed = sum(1 for image_id in made[len(warmup) :] if image_id is None)
    side = Side(len(files), failed, wall_s, cpu_per_file(before, after, len(files)))
    return side, [i for i in made if i is not None], failures.most_common()


def cpu_per_file(before: int | None, after: int | None, files: int) -> float | None:
    """The service's CPU ms per file, when its pid is known."""
    if before is None or after is None:
        return None
    return (after - before) * 1000 / CLOCK_TICKS / files


def cli_env(target: Target, user_id: str, state_dir: Path) -> dict[str, str]:
    """CIS_URL and CIS_TOKEN for `cis`; its resume state in the scratch folder."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CIS_")}
    env = inherited | {"CIS_URL": target.base_url, "CIS_CLIENT_STATE_DIR": str(state_dir)}
    header = target.auth.headers(user_id).get("Authorization", "")
    if header.startswith("Bearer "):
        env["CIS_TOKEN"] = header.removeprefix("Bearer ")
    return env


def cli_run(
    target: Target, user_id: str, folder: Path, concurrency: int, count: int
) -> tuple[Side, int, dict[str, int], list[str]]:
    """`cis upload DIR --concurrency N --no-progress --json`, timed from spawn to exit."""
    command = [str(cis_path()), "upload", str(folder), "--concurrency", str(concurrency)]
    command += ["--no-progress", "--json", "--user", user_id]
    env = cli_env(target, user_id, folder.parent / "cis-state")
    before = cpu_ticks(target.pid)
    start = time.perf_counter()
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )
    wall_s = time.perf_counter() - start
    after = cpu_ticks(target.pid)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    statuses = dict(Counter(str(line["status"]) for line in lines))
    if done.returncode != 0:
        progress(f"cli_upload: cis exited {done.returncode}: {done.stderr.strip()[-500:]}")
    stored = statuses.get("stored", 0)
    side = Side(count, count - stored, wall_s, cpu_per_file(before, after, count))
    ids = [str(line["image_id"]) for line in lines if line.get("image_id")]
    return side, done.returncode, statuses, ids


def clean_up(target: Target, owners: dict[str, list[str]]) -> None:
    """Delete what both sides stored (untimed): a reused table should not keep them."""
    for user_id, ids in owners.items():
        auth = target.auth.headers(user_id)
        with http_client(target.base_url, 8) as client, ThreadPoolExecutor(8) as pool:
            list(pool.map(partial(best_effort_delete, client, auth=auth), ids))


def run(target: Target, plan: Plan, run_id: str) -> CliUploadOutcome:
    """Files made, the raw loop, then `cis upload`; both sides' images deleted after."""
    count, concurrency = plan.cli_files, plan.cli_concurrency
    if not cis_path().exists():
        reason = f"{cis_path()} not found: pip install -e 'clients/python[cli]'"
        return CliUploadOutcome(count, 0, concurrency, skipped=reason)
    scratch = Path(tempfile.mkdtemp(prefix="cis-bench-cli-"))
    try:
        progress(f"cli_upload: writing {2 * count + concurrency} PNGs of ~1 MiB (untimed)")
        raw_files = make_files(scratch / "raw", count, seed=1)
        warmup = make_files(scratch / "warmup", concurrency, seed=2)
        cli_files = make_files(scratch / "cli", count, seed=3)
        mean = sum(p.stat().st_size for p in cli_files) // count
        raw_user, cli_user = f"bench-{run_id}-raw", f"bench-{run_id}-cli"
        progress(f"cli_upload: raw loop, {count} files on {concurrency} threads")
        raw, raw_ids, failures = raw_loop(target, raw_user, raw_files, concurrency, warmup)
        progress(f"cli_upload: cis upload, {count} files, --concurrency {concurrency}")
        cli, code, statuses, cli_ids = cli_run(
            target, cli_user, scratch / "cli", concurrency, count
        )
        progress("cli_upload: deleting both sets (untimed)")
        clean_up(target, {raw_user: raw_ids, cli_user: cli_ids})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return CliUploadOutcome(count, mean, concurrency, raw, cli, code, statuses, failures)


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for the table; '-' when not measured."""
    return "-" if value is None else f"{value:,.{digits}f}"


def report_lines(outcome: CliUploadOutcome) -> list[str]:
    """The scenario's block of the report."""
    if outcome.skipped is not None:
        return [f"`cis upload`: not run ({outcome.skipped})"]
    lines = [
        f"`cis upload` against the raw loop: {outcome.files} distinct PNGs of "
        f"{outcome.mean_bytes / 2**20:.2f} MiB each side, concurrency {outcome.concurrency}; "
        "raw: presign, POST form, complete per file (threads, one keep-alive pool); cis: "
        "`cis upload DIR --no-progress --json` as a subprocess, wall time from spawn to exit "
        "(interpreter start and the sha256 duplicate lookup included):",
        "",
        "| Uploader | Files | Failed | Wall s | Files/s | Service CPU ms/file |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, side in (("raw loop", outcome.raw), ("cis upload", outcome.cli)):
        if side is not None:
            lines.append(
                f"| {name} | {side.files} | {side.failed} | {fmt(side.wall_s, 2)} "
                f"| {fmt(side.files_per_s)} | {fmt(side.cpu_ms_per_file)} |"
            )
    if outcome.cli_exit:
        lines += ["", f"cis exited {outcome.cli_exit}; statuses: `{outcome.cli_statuses}`"]
    if outcome.failures:
        lines += ["", f"Raw loop failures: `{outcome.failures}`"]
    return lines


def target_row(outcome: CliUploadOutcome) -> tuple[str, str, str, bool | None]:
    """The issue's goal: name, goal, measured, met (None: not measured)."""
    name = f"`cis upload` files/s vs the raw loop ({outcome.files} x 1 MiB)"
    goal = f">= {GOAL:.0%} of the raw loop (within 15%)"
    ratio = outcome.ratio
    if ratio is None or outcome.raw is None or outcome.cli is None:
        return name, goal, f"n/a ({outcome.skipped or 'a side failed'})", None
    measured = (
        f"{ratio:.0%} ({outcome.cli.files_per_s:.1f} vs {outcome.raw.files_per_s:.1f} files/s)"
    )
    return name, goal, measured, ratio >= GOAL
