"""The full flow: presign, POST form to S3, complete, download, GET the bytes back, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from bench.harness import Target, http_client, progress
from bench.load import Result, Send, run_load, summarize
from bench.plan import Plan
from bench.steps import (
    FailureCounter,
    FlowFailed,
    best_effort_delete,
    complete,
    delete,
    expect,
    is_loopback,
    post_form,
    presign,
    sample_png,
    sha256_hex,
    step,
)


@dataclass(frozen=True)
class FlowOutcome:
    """The flows' numbers, why some failed and what they left behind."""

    results: list[Result]
    failures: dict[str, int]  # reason -> failed flows, warm-up flows included
    leftovers: int  # the flow user's records in any status after all flows


def download_and_compare(
    client: httpx.Client, image_id: str, png: bytes, auth: dict[str, str]
) -> None:
    """GET /images/{id}/download, then the presigned URL: the bytes must be the upload's."""
    with step("download"):
        download = client.get(f"/images/{image_id}/download", headers=auth)
        url = expect(download, 200, "download").json()["download_url"]
    with step("fetch"):
        if not is_loopback(url):
            raise FlowFailed("fetch: download URL not on 127.0.0.1")
        if expect(client.get(url), 200, "fetch").content != png:
            raise FlowFailed("fetch: bytes differ from the upload")


def run_flow(
    client: httpx.Client, user_id: str, png: bytes, index: int, auth: dict[str, str]
) -> None:
    """presign -> POST to S3 -> complete -> download -> GET bytes -> delete; FlowFailed if not."""
    # `auth` goes to the service only: the presigned requests carry their own signature.
    filename = f"flow-{index}.png"
    image_id, upload = presign(client, user_id, png, filename, ["bench", "flow"], auth)
    try:
        post_form(client, upload, png, filename)
        complete(client, image_id, sha256_hex(png), auth)
        download_and_compare(client, image_id, png, auth)
    except FlowFailed:
        best_effort_delete(client, image_id, auth)
        raise
    delete(client, image_id, auth)


def flow_sender(user_id: str, png: bytes, failures: FailureCounter, auth: dict[str, str]) -> Send:
    """One full flow per call; a failure is counted by the step that failed."""

    def send(client: httpx.Client, index: int) -> bool:
        try:
            run_flow(client, user_id, png, index, auth)
        except FlowFailed as exc:
            failures.add(str(exc))
            return False
        return True

    return send


def leftover_images(target: Target, user_id: str) -> int:
    """Records of a user in any status (first page of 100): after the flows, none."""
    params: dict[str, str | int] = {"user_id": user_id, "limit": 100, "status": "all"}
    with http_client(target.base_url, 1) as client:
        response = client.get("/images", params=params, headers=target.auth.headers(user_id))
        response.raise_for_status()
        items: list[Any] = response.json()["items"]
    return len(items)


def flow_scenario(
    target: Target, plan: Plan, user_id: str, concurrency: int, failures: FailureCounter
) -> Result:
    """`plan.flows` full flows at one concurrency; each talks to the service and to S3."""
    progress(f"full flow: {plan.flows} flows at concurrency {concurrency}")
    send = flow_sender(user_id, sample_png(), failures, target.auth.headers(user_id))
    timings, wall_s, ticks = run_load(target, send, concurrency, plan.flows, plan.warmup, hosts=2)
    return summarize("Full flow", None, concurrency, timings, wall_s, ticks)


def run(target: Target, plan: Plan, user_id: str) -> FlowOutcome:
    """The flows at each `--flow-concurrency`, as one user, then the check for leftovers."""
    failures = FailureCounter()
    results = [flow_scenario(target, plan, user_id, c, failures) for c in plan.flow_concurrency]
    return FlowOutcome(results, failures.most_common(), leftover_images(target, user_id))
