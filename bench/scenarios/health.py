"""GET /health: the cheapest route, a floor for requests/s and service CPU per request."""

from __future__ import annotations

import httpx

from bench.harness import Target, progress
from bench.load import Result, run_load, summarize
from bench.plan import Plan


def health_send(client: httpx.Client, _: int) -> bool:
    """GET /health without a credential, as a load balancer probes it; 200 is success."""
    return client.get("/health").status_code == 200


def health_scenario(target: Target, plan: Plan, concurrency: int) -> Result:
    """`plan.health_requests` probes at one concurrency."""
    progress(f"health: {plan.health_requests} requests at concurrency {concurrency}")
    timings, wall_s, ticks = run_load(
        target, health_send, concurrency, plan.health_requests, plan.warmup
    )
    return summarize("GET /health", None, concurrency, timings, wall_s, ticks)


def run(target: Target, plan: Plan) -> list[Result]:
    """The probes at each `--health-concurrency`."""
    return [health_scenario(target, plan, c) for c in plan.health_concurrency]
