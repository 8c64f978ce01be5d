"""POST /images/{id}/complete alone: the verification of a ~20 KB PNG already in S3.

Each timed request completes its own pending image, prepared untimed before (presign and the
POST form): the service reads the object back from S3, checks the magic bytes, decodes it
with Pillow and hashes it.
"""

from __future__ import annotations

import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import httpx

from bench.harness import Target, http_client, progress
from bench.load import Result, Send, run_load, summarize, warmup_count
from bench.plan import Plan
from bench.steps import (
    FailureCounter,
    FlowFailed,
    best_effort_delete,
    complete,
    pending_upload,
    sample_png,
    sha256_hex,
)

PREPARE_THREADS = 8  # untimed: as fast as the machine allows


@dataclass(frozen=True)
class VerificationOutcome:
    """The verifications' numbers and why some failed."""

    results: list[Result]
    failures: dict[str, int]  # reason -> count, preparation and warm-up included


def prepare_one(
    client: httpx.Client,
    user_id: str,
    auth: dict[str, str],
    failures: FailureCounter,
    index: int,
) -> str | None:
    """One pending image whose bytes are in S3; None (and the reason counted) if that failed."""
    try:
        return pending_upload(client, user_id, sample_png(), f"verify-{index}.png", auth)
    except FlowFailed as exc:
        failures.add(str(exc))
        return None


def prepare(
    target: Target, user_id: str, count: int, auth: dict[str, str], failures: FailureCounter
) -> list[str]:
    """`count` pending images with their bytes uploaded, not completed (untimed)."""
    # Two hosts per thread (service and S3), as the full flow's pool.
    with (
        http_client(target.base_url, 2 * PREPARE_THREADS) as client,
        ThreadPoolExecutor(PREPARE_THREADS) as pool,
    ):
        one = partial(prepare_one, client, user_id, auth, failures)
        return [image_id for image_id in pool.map(one, range(count)) if image_id is not None]


def verification_sender(
    ids: queue.SimpleQueue[str], digest: str, failures: FailureCounter, auth: dict[str, str]
) -> Send:
    """Complete the next prepared image per call; a failure is counted by its reason."""

    def send(client: httpx.Client, _: int) -> bool:
        try:
            image_id = ids.get_nowait()
        except queue.Empty:
            failures.add("prepare: no pending image left (a preparation failed)")
            return False
        try:
            complete(client, image_id, digest, auth)
        except FlowFailed as exc:
            failures.add(str(exc))
            return False
        return True

    return send


def clean_up(target: Target, ids: list[str], auth: dict[str, str]) -> None:
    """Delete the verified images (untimed): a reused table should not keep them."""
    with (
        http_client(target.base_url, PREPARE_THREADS) as client,
        ThreadPoolExecutor(PREPARE_THREADS) as pool,
    ):
        list(pool.map(partial(best_effort_delete, client, auth=auth), ids))


def verification_scenario(
    target: Target, plan: Plan, user_id: str, concurrency: int, failures: FailureCounter
) -> Result:
    """`plan.verifications` timed `complete` calls at one concurrency."""
    auth = target.auth.headers(user_id)
    # run_load's warm-up completes images too: one prepared image for every call it makes.
    count = warmup_count(plan.warmup, concurrency) + plan.verifications
    progress(f"verification: preparing {count} pending uploads (untimed)")
    ids = prepare(target, user_id, count, auth, failures)
    pending: queue.SimpleQueue[str] = queue.SimpleQueue()
    for image_id in ids:
        pending.put(image_id)
    progress(f"verification: {plan.verifications} completes at concurrency {concurrency}")
    send = verification_sender(pending, sha256_hex(sample_png()), failures, auth)
    timings, wall_s, ticks = run_load(target, send, concurrency, plan.verifications, plan.warmup)
    clean_up(target, ids, auth)
    return summarize("POST /images/{id}/complete", None, concurrency, timings, wall_s, ticks)


def run(target: Target, plan: Plan, user_id: str) -> VerificationOutcome:
    """The verifications at each `--verification-concurrency`, as one user."""
    failures = FailureCounter()
    results = [
        verification_scenario(target, plan, user_id, c, failures)
        for c in plan.verification_concurrency
    ]
    return VerificationOutcome(results, failures.most_common())
