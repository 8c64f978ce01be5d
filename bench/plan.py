"""What a run measures: the scenarios and their sizes, counts and concurrencies."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# The scenarios in the order they run, whatever order `--scenarios` names them in: the
# variants first, before the stores start (it needs none, and an idle JVM still takes CPU);
# the list scenarios next, while the table holds exactly the sizes asked for; `cpu` (services
# of its own) before the stall, which runs last because it freezes the stores.
SCENARIOS = (
    "variants",
    "listing",
    "presign",
    "flow",
    "health",
    "verification",
    "cli_upload",
    "multipart",
    "cpu",
    "stall",
)

# The multipart scenario's PNG is 16-bit RGBA (8 bytes a pixel): larger, and it would pass the
# service's default pixel cap (CIS_MAX_PIXELS, 50 MP) and be rejected.
MULTIPART_MAX_MIB = 380


@dataclass(frozen=True)
class Plan:
    """What to run; `--quick` only changes the defaults."""

    requests: int
    concurrency: tuple[int, ...]
    small: int
    large: int
    user_images: int
    list_requests: int
    warmup: int
    stack_warmup: int
    seed_threads: int
    flows: int
    flow_concurrency: tuple[int, ...]
    health_requests: int
    health_concurrency: tuple[int, ...]
    verifications: int
    verification_concurrency: tuple[int, ...]
    variant_rounds: int
    cli_files: int
    cli_concurrency: int
    multipart_mib: int
    multipart_concurrency: tuple[int, ...]
    multipart_rounds: int
    cpu_requests: int
    cpu_concurrency: tuple[int, ...]
    scenarios: tuple[str, ...]


FULL = Plan(
    requests=400,
    concurrency=(1, 8, 32),
    small=1_000,
    large=50_000,
    user_images=200,
    list_requests=200,
    warmup=50,
    stack_warmup=1_000,
    seed_threads=8,
    flows=200,
    flow_concurrency=(1, 8),
    health_requests=1_000,
    health_concurrency=(1, 8),
    verifications=200,
    verification_concurrency=(1, 8),
    variant_rounds=5,
    cli_files=200,
    cli_concurrency=8,
    multipart_mib=200,
    multipart_concurrency=(1, 4, 8),
    multipart_rounds=3,
    cpu_requests=600,
    cpu_concurrency=(1, 8),
    scenarios=SCENARIOS,
)
QUICK = dataclasses.replace(
    FULL,
    requests=200,
    small=500,
    large=5_000,
    user_images=100,
    list_requests=100,
    warmup=20,
    flows=50,
    health_requests=400,
    verifications=50,
    variant_rounds=2,
    multipart_mib=64,
    multipart_rounds=2,
    cpu_requests=150,
)


def plan_problem(plan: Plan) -> str | None:
    """Why the plan cannot run, or None."""
    concurrencies = (
        plan.concurrency
        + plan.flow_concurrency
        + plan.health_concurrency
        + plan.verification_concurrency
        + plan.cpu_concurrency
    )
    counts = (
        plan.requests,
        plan.list_requests,
        plan.flows,
        plan.health_requests,
        plan.verifications,
        plan.cpu_requests,
    )
    if not 0 < plan.user_images <= plan.small < plan.large:
        return "need 0 < --user-images <= --small < --large"
    if (
        not all(
            (
                plan.concurrency,
                plan.flow_concurrency,
                plan.health_concurrency,
                plan.verification_concurrency,
                plan.cpu_concurrency,
            )
        )
        or min(concurrencies) < 1
        or min(counts) < 2
    ):
        # Two timings at least: the percentiles need them.
        return (
            "need every --*concurrency >= 1, --requests, --list-requests, --flows, "
            "--health-requests, --verifications and --cpu-requests >= 2"
        )
    if plan.seed_threads < 1 or min(plan.warmup, plan.stack_warmup) < 0:
        return "need --seed-threads >= 1, --warmup >= 0 and --stack-warmup >= 0"
    if plan.variant_rounds < 1:
        return "need --variant-rounds >= 1"
    if plan.cli_files < 1 or plan.cli_concurrency < 1:
        return "need --cli-files >= 1 and --cli-concurrency >= 1"
    if (
        not 1 <= plan.multipart_mib <= MULTIPART_MAX_MIB
        or not plan.multipart_concurrency
        or min(plan.multipart_concurrency) < 1
        or plan.multipart_rounds < 1
    ):
        # 16-bit RGBA: 8 bytes a pixel; above 380 MiB the PNG passes the 50 MP cap.
        return (
            f"need 1 <= --multipart-mib <= {MULTIPART_MAX_MIB}, every --multipart-concurrency "
            ">= 1 and --multipart-rounds >= 1"
        )
    if not plan.scenarios:
        return "need at least one scenario"
    return None
