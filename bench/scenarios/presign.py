"""POST /images/upload: the presigned form and one pending record, at several concurrencies."""

from __future__ import annotations

import httpx

from bench.harness import Target, progress
from bench.load import Result, Send, run_load, summarize
from bench.plan import Plan


def upload_sender(user_id: str, auth: dict[str, str]) -> Send:
    """POST /images/upload for one user, with that user's credential; 201 is success."""

    def send(client: httpx.Client, index: int) -> bool:
        body = {
            "user_id": user_id,
            "content_type": "image/png",
            "tags": ["bench"],
            "filename": f"bench-{index}.png",
        }
        return client.post("/images/upload", json=body, headers=auth).status_code == 201

    return send


def upload_scenario(target: Target, plan: Plan, user_id: str, concurrency: int) -> Result:
    """`plan.requests` uploads at one concurrency."""
    progress(f"upload: {plan.requests} requests at concurrency {concurrency}")
    send = upload_sender(user_id, target.auth.headers(user_id))
    timings, wall_s, ticks = run_load(target, send, concurrency, plan.requests, plan.warmup)
    return summarize("POST /images/upload", None, concurrency, timings, wall_s, ticks)


def run(target: Target, plan: Plan, user_id: str) -> list[Result]:
    """The uploads at each `--concurrency`, as one user (they leave pending records behind)."""
    return [upload_scenario(target, plan, user_id, c) for c in plan.concurrency]
