"""The report: markdown on stdout, the same results as JSON, the targets and checks."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import ROOT, Target, service_log_summary
from bench.load import Result
from bench.plan import Plan
from bench.scenarios import Outcome, cpu, multipart
from bench.scenarios import cli_upload as cli
from bench.scenarios.cpu import CpuOutcome
from bench.scenarios.listing import PAGE_SIZE, Walk
from bench.scenarios.stall import READY, Probe, StallOutcome
from bench.scenarios.variants import report_lines, target_row
from bench.steps import sample_png

MAX_FAILURES_SHOWN = 5
UPLOAD_CPU_TARGET_MS = 2.0
LIST_RATIO_TARGET = 1.5


# ---------------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    """One target of the issue and whether it is met (None: not measurable)."""

    name: str
    goal: str
    measured: str
    met: bool | None


def cpu_check(
    name: str, limit_ms: float, results: list[Result], missing: str = "service pid unknown"
) -> Check:
    """Service CPU per request at most `limit_ms` at every concurrency (the worst shown)."""
    goal = f"<= {limit_ms:g} ms"
    known = [(r.cpu_ms_per_request, r.concurrency) for r in results]
    found = [(cpu, c) for cpu, c in known if cpu is not None]
    if not found:
        return Check(name, goal, f"n/a ({missing})", None)
    worst, at = max(found)
    return Check(name, goal, f"{worst:.2f} ms (worst, at concurrency {at})", worst <= limit_ms)


def upload_cpu_check(uploads: list[Result]) -> Check:
    """Service CPU per upload, worst concurrency."""
    return cpu_check("Service CPU per upload request", UPLOAD_CPU_TARGET_MS, uploads)


def cpu_scenario_checks(outcome: CpuOutcome) -> list[Check]:
    """The cpu scenario's goals, on the `aws` backend at every concurrency."""
    missing = outcome.skipped.get(cpu.AWS) or outcome.errors.get(cpu.AWS) or "not measured"
    results = [row.result for row in outcome.rows if row.backend == cpu.AWS]
    return [
        cpu_check(
            f"Service CPU per {label} (`aws`)",
            limit_ms,
            [r for r in results if r.scenario == label],
            missing,
        )
        for label, limit_ms in cpu.TARGETS_MS.items()
    ]


def list_ratio_check(small: Result, large: Result) -> Check:
    """p50 of the large table against the small one."""
    ratio = large.p50_ms / small.p50_ms
    name = f"List p50 at {large.table_items:,} vs {small.table_items:,} images"
    measured = f"{ratio:.2f}x ({large.p50_ms:.2f} ms vs {small.p50_ms:.2f} ms)"
    return Check(name, f"<= {LIST_RATIO_TARGET:g}x", measured, ratio <= LIST_RATIO_TARGET)


def walk_check(walks: list[Walk]) -> Check:
    """Following next_cursor returns every image of the user, once, newest first."""
    parts = [f"{w.found} of {w.expected} at {w.table_items:,}" for w in walks]
    goal = "every image once, newest first"
    return Check(
        "List complete via next_cursor", goal, "; ".join(parts), all(w.complete for w in walks)
    )


def flow_cleanup_check(leftovers: int) -> Check:
    """Every flow deleted its image: the flow user has no record in any status."""
    measured = f"{leftovers}{'+' if leftovers >= 100 else ''} records (status=all)"
    return Check("Full flow leaves no records", "0", measured, leftovers == 0)


def stall_checks(stall: StallOutcome) -> list[Check]:
    """Each frozen store answered as expected, and the slowest 503 within its bound."""
    if stall.skipped is not None:
        return []
    as_expected = sum(1 for p in stall.probes if p.status == p.expected)
    recovered = all(seconds is not None for seconds in stall.recovery_s.values())
    measured = f"{as_expected} of {len(stall.probes)}; ready again: {yes_no(recovered)}"
    if stall.error is not None:
        measured = f"not run ({stall.error})"
    goal = "503 (/health 200), then /ready 200"
    checks = [Check("Answers with a store frozen", goal, measured, not stall.failed)]
    late = [p for p in stall.probes if p.expected == 503 and p.request != READY]
    if late and stall.bound_s is not None:
        worst = max(late, key=lambda p: p.seconds)
        checks.append(
            Check(
                "Time to a 503 with a store frozen",
                f"<= {stall.bound_s:g} s (attempts x timeout + backoff + 1 s)",
                f"{worst.seconds:.2f} s (worst: {worst.request}, {worst.frozen} frozen)",
                worst.seconds <= stall.bound_s,
            )
        )
    return checks


def all_checks(outcome: Outcome) -> list[Check]:
    """The targets of the scenarios that ran, in the report's order."""
    checks = [Check(*target_row(outcome.variants))] if outcome.variants is not None else []
    if outcome.uploads is not None:
        checks.append(upload_cpu_check(outcome.uploads))
    if outcome.listing is not None:
        checks.append(list_ratio_check(*outcome.listing.results))
        checks.append(walk_check(outcome.listing.walks))
    if outcome.flow is not None:
        checks.append(flow_cleanup_check(outcome.flow.leftovers))
    if outcome.cli_upload is not None:
        checks.append(Check(*cli.target_row(outcome.cli_upload)))
    if outcome.multipart is not None:
        checks.append(Check(*multipart.target_row(outcome.multipart)))
    if outcome.cpu is not None:
        checks += cpu_scenario_checks(outcome.cpu)
    if outcome.stall is not None:
        checks += stall_checks(outcome.stall)
    return checks


# --------------------------------------------------------------------------------- machine


def machine() -> dict[str, str]:
    """What ran the benchmark."""
    models = [
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    ]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": models[0] if models else platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "os": platform.platform(),
        "commit": git_commit(),
    }


def git_commit() -> str:
    """HEAD of the repository, marked when the tree has local changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{head}+dirty" if git("status", "--porcelain") else head


def log_lines(summary: dict[str, Any] | None, label: str = "Service log") -> list[str]:
    """The service-log line of the report (none for a service this process did not start)."""
    if summary is None:
        return []
    if not summary["count"]:
        return [f"- {label}: no warnings or errors"]
    examples = "; ".join(f"`{example}`" for example in summary["examples"])
    return [f"- {label}: {summary['count']} warning/error lines, distinct: {examples}"]


# ---------------------------------------------------------------------------------- tables


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for the table; '-' when not measured."""
    return "-" if value is None else f"{value:,.{digits}f}"


def yes_no(value: bool | None) -> str:
    """A check's verdict; a failure stands out in bold."""
    return "n/a" if value is None else ("yes" if value else "**no**")


def results_table(results: list[Result], unit: str = "request") -> list[str]:
    """A markdown table of results; `unit` is what one timed call is (request or flow)."""
    units = f"{unit.capitalize()}s"
    lines = [
        f"| Scenario | Images in table | Concurrency | {units} | Errors | {units}/s "
        f"| p50 ms | p95 ms | p99 ms | Service CPU ms/{unit} |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        size = "-" if r.table_items is None else f"{r.table_items:,}"
        lines.append(
            f"| {r.scenario} | {size} | {r.concurrency} | {r.requests} | {r.errors} "
            f"| {fmt(r.requests_per_s, 1)} | {fmt(r.p50_ms)} | {fmt(r.p95_ms)} "
            f"| {fmt(r.p99_ms)} | {fmt(r.cpu_ms_per_request)} |"
        )
    return lines


def walks_table(walks: list[Walk]) -> list[str]:
    """The complete-listing check."""
    lines = [
        "| Images in table | Pages | Found | Unique | Expected | Newest first | Complete |",
        "|--:|--:|--:|--:|--:|:-:|:-:|",
    ]
    for w in walks:
        lines.append(
            f"| {w.table_items:,} | {w.pages} | {w.found} | {w.unique} | {w.expected} "
            f"| {yes_no(w.newest_first)} | {yes_no(w.complete)} |"
        )
    return lines


def failure_lines(label: str, failures: dict[str, int]) -> list[str]:
    """The most frequent reasons of failures, if there were any, after `label`."""
    if not failures:
        return []
    shown = list(failures.items())[:MAX_FAILURES_SHOWN]
    text = "; ".join(f"`{reason}` x{count}" for reason, count in shown)
    return ["", f"{label}: {text}"]


def checks_table(checks: list[Check]) -> list[str]:
    """The issue's targets beside the results."""
    lines = ["| Target | Goal | Measured | Met |", "|---|---|---|:-:|"]
    lines += [f"| {c.name} | {c.goal} | {c.measured} | {yes_no(c.met)} |" for c in checks]
    return lines


def statuses(probes: list[Probe]) -> str:
    """`503 x3`; an answer other than the expected one in bold, `none` for no answer."""
    counts = Counter(p.status for p in probes)
    expected = probes[0].expected
    parts = []
    for status, count in counts.items():
        text = f"{'none' if status is None else status} x{count}"
        parts.append(text if status == expected else f"**{text}**")
    return ", ".join(parts)


def stall_lines(stall: StallOutcome) -> list[str]:
    """The stall table: one row per store and request, with /ready's checks below."""
    if stall.skipped is not None or stall.error is not None:
        return [f"Stores frozen: not run ({stall.skipped or stall.error})"]
    lines = [
        f"Stores frozen (SIGSTOP, one at a time; the service's {stall.timeouts}); "
        "each request is timed alone, by the client:",
        "",
        "| Store frozen | Request | Expected | Status | Seconds min | Seconds max |",
        "|---|---|--:|---|--:|--:|",
    ]
    groups: dict[tuple[str, str], list[Probe]] = {}
    for p in stall.probes:
        groups.setdefault((p.frozen, p.request), []).append(p)
    for (frozen, request), probes in groups.items():
        seconds = [p.seconds for p in probes]
        lines.append(
            f"| {frozen} | {request} | {probes[0].expected} | {statuses(probes)} "
            f"| {fmt(min(seconds), 3)} | {fmt(max(seconds), 3)} |"
        )
    lines.append("")
    for frozen, checks in stall.ready_checks.items():
        lines.append(f"- `/ready` with {frozen} frozen: `{json.dumps(checks)}`")
    for frozen, recovery in stall.recovery_s.items():
        after = "not within the timeout" if recovery is None else f"{recovery:.2f} s"
        lines.append(f"- `/ready` 200 again after {frozen} resumed: {after}")
    return lines


def cpu_lines(outcome: CpuOutcome) -> list[str]:
    """The cpu scenario's table, then its backends not run or failed and their logs."""
    lines = [
        "Service CPU per request (`cpu`): per backend a service started for this scenario "
        "alone (`cloud-image-service serve`, 1 uvicorn process), `CIS_AUTH_MODE=none`, "
        f"`CIS_RATE_LIMIT={cpu.RATE_LIMIT}` (counted in DynamoDB on every upload, never "
        "refused), `CIS_EVENTS=off`, the default log level (access log included). CPU: "
        "utime + stime of the service process over the timed requests / the successful "
        f"requests, after {outcome.warmup} untimed requests per row. `aws`: SeaweedFS + DynamoDB "
        "Local. `embedded`: moto inside the service process, so its CPU includes moto's "
        "in-process S3 and DynamoDB servers: higher, and not comparable to `aws`.",
        "",
        "| Backend | Request | Clients | Requests | Requests/s | Service CPU ms/request |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for row in outcome.rows:
        r = row.result
        count = f"{r.requests} (**{r.errors} failed**)" if r.errors else str(r.requests)
        lines.append(
            f"| {row.backend} | {r.scenario} | {r.concurrency} | {count} "
            f"| {fmt(r.requests_per_s, 1)} | {fmt(r.cpu_ms_per_request)} |"
        )
    notes = [f"- `{name}`: not run ({why})" for name, why in outcome.skipped.items()]
    notes += [f"- `{name}`: **failed** ({what})" for name, what in outcome.errors.items()]
    for name, summary in outcome.logs.items():
        notes += log_lines(summary, f"Service log (`{name}`)")
    return [*lines, "", *notes]


# ---------------------------------------------------------------------------------- report


def request_results(outcome: Outcome) -> list[Result]:
    """The rows of the main table: one timed request each."""
    rows = list(outcome.uploads or [])
    rows += outcome.listing.results if outcome.listing else []
    rows += outcome.health or []
    rows += outcome.verification.results if outcome.verification else []
    return rows


def sections(outcome: Outcome) -> list[list[str]]:
    """The report's blocks after the header, for the scenarios that ran."""
    blocks = [report_lines(outcome.variants)] if outcome.variants is not None else []
    if rows := request_results(outcome):
        failures = outcome.verification.failures if outcome.verification else {}
        label = "Failed verifications by reason (preparation and warm-up included)"
        blocks.append(results_table(rows) + failure_lines(label, failures))
    if outcome.flow is not None:
        heading = (
            "Full flow (POST /images/upload, multipart POST of a "
            f"{len(sample_png()):,}-byte PNG to the presigned form, POST /images/{{id}}/complete, "
            "GET /images/{id}/download, GET of the presigned URL with the bytes compared, "
            "DELETE /images/{id}); latency is the whole flow:"
        )
        table = results_table(outcome.flow.results, "flow")
        reasons = failure_lines("Failed flows by reason (warm-up included)", outcome.flow.failures)
        blocks.append([heading, "", *table, *reasons])
    if outcome.listing is not None:
        heading = f"Complete listing (following `next_cursor`, limit {PAGE_SIZE}):"
        blocks.append([heading, "", *walks_table(outcome.listing.walks)])
    if outcome.cli_upload is not None:
        blocks.append(cli.report_lines(outcome.cli_upload))
    if outcome.multipart is not None:
        blocks.append(multipart.report_lines(outcome.multipart))
    if outcome.cpu is not None:
        blocks.append(cpu_lines(outcome.cpu))
    if outcome.stall is not None:
        blocks.append(stall_lines(outcome.stall))
    return blocks


def markdown(report: dict[str, Any], outcome: Outcome, checks: list[Check]) -> str:
    """The whole report as printed."""
    info = report["machine"]
    lines = [
        "# Cloud Image Service benchmark",
        "",
        f"- Date: {info['date']}",
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['os']}",
        f"- Python: {info['python']}; commit {info['commit']}",
        f"- Service: {report['service']}",
        f"- Auth: {report['auth']}",
        "- Client, service and stores share the machine's cores; latency is measured by the "
        "client (httpx, keep-alive pool sized to the concurrency).",
        f"- Plan: {report['plan']}",
        *log_lines(report["service_log"]),
    ]
    for block in sections(outcome):
        lines += ["", *block]
    if checks:
        lines += ["", "Targets:", "", *checks_table(checks)]
    lines += ["", f"Total run time: {report['total_seconds']:.1f} s"]
    return "\n".join(lines)


def build_report(
    target: Target | None, plan: Plan, outcome: Outcome, checks: list[Check], total_s: float
) -> dict[str, Any]:
    """The JSON form; the markdown is rendered from it."""
    plan_text = ", ".join(f"{f.name}={getattr(plan, f.name)}" for f in dataclasses.fields(Plan))
    flow, verification = outcome.flow, outcome.verification
    return {
        "machine": machine(),
        "service": target.description if target else "not started (no scenario needs it)",
        "auth": target.auth.description if target else "n/a (no request sent)",
        "plan": plan_text,
        "service_log": service_log_summary(target.log if target else None),
        "results": [dataclasses.asdict(r) for r in request_results(outcome)],
        "walks": [dataclasses.asdict(w) for w in outcome.listing.walks] if outcome.listing else [],
        # `requests` and `requests_per_s` count flows here; the CPU is per flow.
        "flows": [dataclasses.asdict(r) for r in flow.results] if flow else [],
        "flow_failures": flow.failures if flow else {},
        "flow_leftovers": flow.leftovers if flow else None,
        "verification_failures": verification.failures if verification else {},
        "stall": dataclasses.asdict(outcome.stall) if outcome.stall else None,
        "variants": dataclasses.asdict(outcome.variants) if outcome.variants else None,
        "cli_upload": dataclasses.asdict(outcome.cli_upload) if outcome.cli_upload else None,
        "multipart": multipart.as_json(outcome.multipart) if outcome.multipart else None,
        "cpu": dataclasses.asdict(outcome.cpu) if outcome.cpu else None,
        "targets": [dataclasses.asdict(c) for c in checks],
        "total_seconds": total_s,
    }


def publish(
    args: argparse.Namespace,
    target: Target | None,
    plan: Plan,
    outcome: Outcome,
    elapsed_s: float,
) -> int:
    """Print the report (and write the JSON); the exit status: 1 when anything failed."""
    # Failed: a request, flow or verification, an incomplete list, records the flows left
    # behind, a frozen store's wrong answer, a variants run, a cli_upload file, or a
    # multipart upload. Missed targets are only reported.
    checks = all_checks(outcome)
    report = build_report(target, plan, outcome, checks, elapsed_s)
    print(markdown(report, outcome, checks), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    timed = request_results(outcome) + (outcome.flow.results if outcome.flow else [])
    failed = any(r.errors for r in timed)
    walks = outcome.listing.walks if outcome.listing else []
    leftovers = outcome.flow.leftovers if outcome.flow else 0
    incomplete = not all(w.complete for w in walks) or leftovers > 0
    stalled = outcome.stall is not None and outcome.stall.failed
    failed = failed or (outcome.variants is not None and outcome.variants.failed)
    failed = failed or (outcome.cli_upload is not None and outcome.cli_upload.failed)
    failed = failed or (outcome.multipart is not None and outcome.multipart.failed)
    failed = failed or (outcome.cpu is not None and outcome.cpu.failed)
    return 1 if failed or incomplete or stalled else 0
