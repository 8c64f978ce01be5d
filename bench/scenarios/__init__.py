"""The scenarios, one module each, and the order they run in (`bench.plan.SCENARIOS`).

Each runs as a user of its own, `bench-<run>-<role>`, fresh every run: a reused table holds
earlier runs' users. `variants` is apart: it needs no service, so `__main__` runs it first,
before any store starts.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass

from bench.harness import Target, http_client
from bench.load import Result
from bench.plan import Plan
from bench.scenarios import (
    cli_upload,
    cpu,
    flow,
    health,
    listing,
    multipart,
    presign,
    stall,
    verification,
)
from bench.scenarios.cli_upload import CliUploadOutcome
from bench.scenarios.cpu import CpuOutcome
from bench.scenarios.flow import FlowOutcome
from bench.scenarios.listing import ListingOutcome
from bench.scenarios.multipart import MultipartOutcome
from bench.scenarios.stall import StallOutcome
from bench.scenarios.variants import VariantsOutcome
from bench.scenarios.verification import VerificationOutcome

# Scenarios whose numbers depend on a warm stack (the list scenario warms it itself).
THROUGHPUT = frozenset(
    {"presign", "flow", "health", "verification", "cli_upload", "multipart", "cpu"}
)


@dataclass(frozen=True)
class Outcome:
    """Everything measured; None for a scenario that was not asked for."""

    listing: ListingOutcome | None = None
    uploads: list[Result] | None = None
    flow: FlowOutcome | None = None
    health: list[Result] | None = None
    verification: VerificationOutcome | None = None
    stall: StallOutcome | None = None
    variants: VariantsOutcome | None = None  # run by __main__, before any store starts
    cli_upload: CliUploadOutcome | None = None
    multipart: MultipartOutcome | None = None
    cpu: CpuOutcome | None = None


def check_access(target: Target, user_id: str) -> None:
    """One list request before anything is seeded: a refused credential ends the run."""
    params: dict[str, str | int] = {"user_id": user_id, "limit": 1}
    with http_client(target.base_url, 1) as client:
        response = client.get("/images", params=params, headers=target.auth.headers(user_id))
    if response.status_code in (401, 403):
        sys.exit(
            f"GET /images as {user_id}: HTTP {response.status_code} {response.text[:200]}\n"
            f"{target.auth.hint}"
        )
    response.raise_for_status()


def run_scenarios(target: Target, plan: Plan) -> Outcome:
    """The plan's scenarios in the order of SCENARIOS; the stall, which freezes stores, last."""
    run_id = secrets.token_hex(4)  # fresh user ids: a reused table holds earlier runs' users
    owner = f"bench-{run_id}-owner"
    chosen = set(plan.scenarios)
    check_access(target, owner)
    lists = None
    if "listing" in chosen:
        lists = listing.run(target, plan, run_id, owner)
    elif chosen & THROUGHPUT:
        # What the list scenario does after seeding: nothing timed runs on a cold stack.
        listing.warm_up(target, plan, owner)
    uploads = presign.run(target, plan, f"bench-{run_id}-uploader") if "presign" in chosen else None
    flows = flow.run(target, plan, f"bench-{run_id}-flow") if "flow" in chosen else None
    probes = health.run(target, plan) if "health" in chosen else None
    verifier = f"bench-{run_id}-verifier"
    verifications = verification.run(target, plan, verifier) if "verification" in chosen else None
    uploaded = cli_upload.run(target, plan, run_id) if "cli_upload" in chosen else None
    parts = multipart.run(target, plan, run_id) if "multipart" in chosen else None
    costs = cpu.run(target, plan, run_id) if "cpu" in chosen else None
    stalled = stall.run(target, f"bench-{run_id}-stall") if "stall" in chosen else None
    return Outcome(
        lists,
        uploads,
        flows,
        probes,
        verifications,
        stalled,
        cli_upload=uploaded,
        multipart=parts,
        cpu=costs,
    )
