"""Variants per second and peak memory, for each input and pipeline; no service, no stores.

Four inputs, made from fixed seeds at the start (`bench.variants_child inputs`): a 12 MP
JPEG, a 50 MP JPEG, a 4K PNG with alpha and a 20 MP AVIF. Three pipelines make both
default variants (thumb 256, preview 1280) as WebP from each: `service`, the service's own
`make_variants` (Pillow, or libvips for PNG); `pillow`, its Pillow path for every format;
`pyvips`, libvips for every format (the service's libvips path for PNG, a shrink-on-load
`thumbnail` chain for the others). Each run is a fresh process that warms up on a tiny
image first; the rounds are interleaved, so a slow phase of a shared machine hits every
pipeline alike.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import ROOT, progress
from bench.plan import Plan
from bench.variants_child import INPUTS, PIPELINES, SIZES, Input

CPU_TARGET_MS = 150.0  # the issue: a 12 MP JPEG to both default variants, one core
TARGET_INPUT = "12 MP JPEG"
NEAR = 0.10  # a library within 10% of the fastest's CPU that takes less memory is preferred
INPUTS_TIMEOUT_S = 900.0
RUN_TIMEOUT_S = 300.0
LIBRARIES = ("pillow", "pyvips")


@dataclass(frozen=True)
class Row:
    """One input and pipeline over every round: medians, and the highest peak RSS."""

    input: str
    pipeline: str
    library: str  # what did the work: pillow or pyvips (for `service`, what it chose)
    runs: int  # that succeeded
    cpu_ms: float | None
    wall_ms: float | None
    variants_per_s: float | None  # variants / median wall time
    peak_rss_mb: float | None
    sizes: str  # "1280x960 / 256x192", largest first
    error: str | None = None  # the first failure's reason, if any run failed


@dataclass(frozen=True)
class Choice:
    """Which library an input should go to, and whether the service's dispatch agrees."""

    input: str
    fastest: str
    pick: str  # the fastest, or a library within NEAR of it that takes less memory
    service: str  # the library `make_variants` used
    agrees: bool
    text: str


@dataclass(frozen=True)
class VariantsOutcome:
    """The table, the choices and what the inputs were."""

    rows: list[Row]
    choices: list[Choice]
    inputs: dict[str, int]  # input label -> file size in bytes
    rounds: int

    @property
    def failed(self) -> bool:
        """A run failed (its reason is in the table)."""
        return any(row.error is not None for row in self.rows)


def child(*args: str, timeout: float) -> dict[str, Any] | list[Any] | str:
    """Run `python -m bench.variants_child ARGS`: its JSON line, or the reason it failed."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.variants_child", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"no result within {timeout:.0f} s"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        return lines[-1][:200]
    result: dict[str, Any] | list[Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def make_inputs(folder: Path) -> dict[str, int]:
    """The four inputs in `folder`, made by a child (the parent stays small): label -> bytes."""
    progress("variants: making the inputs (12 MP and 50 MP JPEG, 4K PNG, 20 MP AVIF)")
    made = child("inputs", str(folder), timeout=INPUTS_TIMEOUT_S)
    if not isinstance(made, list):
        sys.exit(f"variants: the inputs could not be made: {made}")
    sizes = {entry["file"]: entry["bytes"] for entry in made}
    return {spec.label: sizes[spec.file] for spec in INPUTS}


def summarize(spec: Input, pipeline: str, runs: list[dict[str, Any] | str]) -> Row:
    """Medians of the runs that succeeded; the first failure's reason, if any."""
    good = [run for run in runs if isinstance(run, dict)]
    errors = [run for run in runs if isinstance(run, str)]
    error = f"{len(errors)} of {len(runs)} runs failed: {errors[0]}" if errors else None
    if not good:
        return Row(spec.label, pipeline, "-", 0, None, None, None, None, "-", error)
    wall = statistics.median(run["wall_ms"] for run in good)
    sizes = " / ".join(f"{w}x{h}" for w, h in good[0]["sizes"].values())
    return Row(
        spec.label,
        pipeline,
        good[0]["library"],
        len(good),
        statistics.median(run["cpu_ms"] for run in good),
        wall,
        len(SIZES) / (wall / 1000),
        max(run["peak_rss_mb"] for run in good),
        sizes,
        error,
    )


def choose(label: str, rows: list[Row]) -> Choice | None:
    """The faster library for this input, or the one within NEAR of it with less memory."""
    by_library = {r.pipeline: r for r in rows if r.input == label and r.pipeline in LIBRARIES}
    timed = {name: r for name, r in by_library.items() if r.cpu_ms is not None}
    service = next((r for r in rows if r.input == label and r.pipeline == "service"), None)
    if len(timed) < len(LIBRARIES) or service is None or service.runs == 0:
        return None
    fastest = min(timed.values(), key=lambda r: r.cpu_ms or 0.0)
    assert fastest.cpu_ms is not None
    near = [r for r in timed.values() if (r.cpu_ms or 0.0) <= fastest.cpu_ms * (1 + NEAR)]
    pick = min(near, key=lambda r: (r.peak_rss_mb or 0.0, r.cpu_ms or 0.0))
    others = ", ".join(
        f"{r.pipeline} {r.cpu_ms:,.0f} ms ({(r.cpu_ms or 0.0) / fastest.cpu_ms - 1:+.1%})"
        for r in timed.values()
        if r is not fastest
    )
    why = ""
    if pick is not fastest:
        why = f", within {NEAR:.0%} with less memory ({pick.peak_rss_mb:.0f} MB)"
    agrees = service.library == pick.pipeline
    text = (
        f"{label}: fastest {fastest.pipeline} ({fastest.cpu_ms:,.0f} ms CPU; {others}); "
        f"pick {pick.pipeline}{why}; the service uses {service.library}: "
        f"{'yes' if agrees else '**no**'}"
    )
    return Choice(label, fastest.pipeline, pick.pipeline, service.library, agrees, text)


def run(plan: Plan) -> VariantsOutcome:
    """`plan.variant_rounds` interleaved rounds of every input and pipeline."""
    folder = Path(tempfile.mkdtemp(prefix="cis-bench-variants-"))
    try:
        inputs = make_inputs(folder)
        results: dict[tuple[str, str], list[dict[str, Any] | str]] = {}
        for round_index in range(plan.variant_rounds):
            progress(f"variants: round {round_index + 1} of {plan.variant_rounds}")
            for spec in INPUTS:
                for pipeline in PIPELINES:
                    path = str(folder / spec.file)
                    result = child("measure", pipeline, path, timeout=RUN_TIMEOUT_S)
                    if isinstance(result, list):
                        result = "unexpected output"
                    results.setdefault((spec.label, pipeline), []).append(result)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rows = [summarize(spec, p, results[(spec.label, p)]) for spec in INPUTS for p in PIPELINES]
    choices = [c for spec in INPUTS if (c := choose(spec.label, rows)) is not None]
    return VariantsOutcome(rows, choices, inputs, plan.variant_rounds)


# ---------------------------------------------------------------------------------- report


def number(value: float | None, digits: int = 0) -> str:
    """A cell; '-' when not measured."""
    return "-" if value is None else f"{value:,.{digits}f}"


def report_lines(outcome: VariantsOutcome) -> list[str]:
    """The scenario's block of the report."""
    sizes = ", ".join(f"{name} {side}" for name, side in SIZES.items())
    lines = [
        f"Variants ({sizes}, as WebP), no service: each run a fresh process, after a warm-up "
        f"on a 64 x 48 image; median of {outcome.rounds} interleaved rounds. CPU is every "
        "thread's (`time.process_time`); peak RSS the process's highest of the rounds "
        "(`VmHWM`: interpreter and libraries included, about 40 MB before any work). "
        "Inputs: "
        + ", ".join(f"{label} {size / 1e6:.1f} MB" for label, size in outcome.inputs.items()),
        "",
        "| Input | Pipeline | Library | CPU ms | Wall ms | Variants/s | Peak RSS MB | Sizes |",
        "|---|---|---|--:|--:|--:|--:|---|",
    ]
    for r in outcome.rows:
        sizes_cell = r.sizes if r.error is None else f"{r.sizes}; **{r.error}**"
        lines.append(
            f"| {r.input} | {r.pipeline} | {r.library} | {number(r.cpu_ms)} "
            f"| {number(r.wall_ms)} | {number(r.variants_per_s, 1)} "
            f"| {number(r.peak_rss_mb)} | {sizes_cell} |"
        )
    lines += ["", *(f"- {choice.text}" for choice in outcome.choices)]
    return lines


def target_row(outcome: VariantsOutcome) -> tuple[str, str, str, bool | None]:
    """The issue's goal: name, goal, measured, met (None: not measured)."""
    name = f"{TARGET_INPUT}, both variants, service pipeline"
    goal = f"<= {CPU_TARGET_MS:g} ms CPU"
    row = next(r for r in outcome.rows if r.input == TARGET_INPUT and r.pipeline == "service")
    if row.cpu_ms is None:
        return name, goal, "n/a (every run failed)", None
    measured = f"{row.cpu_ms:,.0f} ms (median of {row.runs}; wall {row.wall_ms:,.0f} ms)"
    return name, goal, measured, row.cpu_ms <= CPU_TARGET_MS
