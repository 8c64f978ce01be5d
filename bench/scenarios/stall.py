"""The time to a 503 while a store does not answer, with the service's store timeouts.

SeaweedFS, then DynamoDB Local, is frozen with SIGSTOP (`LocalServer.pause`): connections are
still accepted and nothing is answered, the worst kind of outage for a client, which can only
give up on its own timeout. Runs last: it needs the stores this process started, and whatever
it leaves pending or in flight must not disturb another scenario.
"""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from bench.harness import Stores, Target, http_client, progress
from bench.steps import FlowFailed, best_effort_delete, pending_upload, sample_png

if TYPE_CHECKING:
    from cloud_image_service.local.devstores.base import LocalServer

STALL_REQUESTS = 3  # sequential requests per store: the same answer three times, not a fluke
RECOVERY_TIMEOUT_S = 120.0
POLL_S = 0.2
COMPLETE = "POST /images/{id}/complete"
GET_IMAGE = "GET /images/{id}"
READY = "GET /ready"
HEALTH = "GET /health"


@dataclass(frozen=True)
class Probe:
    """One request while a store was frozen."""

    frozen: str  # the store that did not answer
    request: str
    expected: int
    status: int | None  # None: no answer within the client's timeout
    seconds: float


@dataclass(frozen=True)
class StallOutcome:
    """The probes, what /ready said and how long the service took to be ready again."""

    skipped: str | None = None  # why the scenario did not run (an external service)
    error: str | None = None  # why it stopped before freezing anything
    timeouts: str = ""  # the store timeouts the service ran with
    bound_s: float | None = None  # `late_after_s`: a 503 after this is late
    probes: list[Probe] = field(default_factory=list)
    ready_checks: dict[str, Any] = field(default_factory=dict)  # store -> /ready's `checks`
    recovery_s: dict[str, float | None] = field(default_factory=dict)  # store -> resume to 200

    @property
    def failed(self) -> bool:
        """A wrong answer, no answer, no recovery or no run at all (but a skip)."""
        wrong = any(p.status != p.expected for p in self.probes)
        stuck = any(seconds is None for seconds in self.recovery_s.values())
        return self.error is not None or wrong or stuck


def probe(
    client: httpx.Client, frozen: str, request: str, expected: int, path: str, **kwargs: Any
) -> tuple[Probe, httpx.Response | None]:
    """Send one request and time it; the method is the first word of `request`."""
    method = request.split(" ", 1)[0]
    start = time.perf_counter()
    try:
        response: httpx.Response | None = client.request(method, path, **kwargs)
    except httpx.HTTPError:
        response = None
    seconds = time.perf_counter() - start
    status = None if response is None else response.status_code
    progress(f"stall: {frozen} frozen, {request}: {status or 'no answer'} in {seconds:.2f} s")
    return Probe(frozen, request, expected, status, seconds), response


def ready_checks(response: httpx.Response | None) -> Any:
    """The `checks` of a /ready answer, or why there are none."""
    if response is None:
        return "no answer"
    try:
        return response.json()["checks"]
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def wait_until_ready(client: httpx.Client) -> float | None:
    """Seconds until /ready answers 200; None if it does not within RECOVERY_TIMEOUT_S."""
    start = time.perf_counter()
    while time.perf_counter() - start < RECOVERY_TIMEOUT_S:
        with suppress(httpx.HTTPError):
            if client.get("/ready").status_code == 200:
                return time.perf_counter() - start
        time.sleep(POLL_S)
    return None


def timeouts_text(stores: Stores) -> str:
    """The configuration the worst case follows from."""
    return (
        f"CIS_AWS_TIMEOUT_SECONDS={stores.aws_timeout_s:g}, "
        f"CIS_AWS_MAX_ATTEMPTS={stores.aws_max_attempts}, "
        f"CIS_READY_TIMEOUT_SECONDS={stores.ready_timeout_s:g}"
    )


def late_after_s(stores: Stores) -> float:
    """Attempts x timeout, the longest backoffs between the attempts and 1 s for the rest."""
    # botocore's standard retry mode waits up to 2^(n-1) s (at most 20 s) before retry n.
    retries = range(1, stores.aws_max_attempts)
    backoff = sum(min(2.0 ** (retry - 1), 20.0) for retry in retries)
    return stores.aws_max_attempts * stores.aws_timeout_s + backoff + 1.0


def run(target: Target, user_id: str) -> StallOutcome:
    """Freeze S3, then DynamoDB: time the requests that need it, /ready and /health."""
    stores = target.stores
    if stores is None:
        reason = "--url: the benchmark did not start the stores, so it cannot freeze them"
        progress(f"stall: skipped ({reason})")
        return StallOutcome(skipped=reason)
    auth = target.auth.headers(user_id)
    worst_s = stores.aws_max_attempts * stores.aws_timeout_s
    # The client waits well past the service's worst case: a late 503 is measured, not cut.
    client_timeout = max(30.0, 4 * worst_s)
    outcome = StallOutcome(timeouts=timeouts_text(stores), bound_s=late_after_s(stores))
    with http_client(target.base_url, 2, client_timeout) as client:
        progress(f"stall: {STALL_REQUESTS} pending uploads ({outcome.timeouts})")
        ids: list[str] = []
        try:
            for index in range(STALL_REQUESTS):
                filename = f"stall-{index}.png"
                ids.append(pending_upload(client, user_id, sample_png(), filename, auth))
        except FlowFailed as exc:
            for image_id in ids:
                best_effort_delete(client, image_id, auth)
            return StallOutcome(timeouts=outcome.timeouts, error=f"preparation: {exc}")
        # complete reads the object back from S3; GET /images/{id} reads only the record.
        completes = [f"/images/{image_id}/complete" for image_id in ids]
        freeze(client, stores.s3, "S3 (SeaweedFS)", COMPLETE, completes, auth, outcome)
        records = [f"/images/{image_id}" for image_id in ids]
        freeze(
            client, stores.dynamodb, "DynamoDB (DynamoDB Local)", GET_IMAGE, records, auth, outcome
        )
        for image_id in ids:
            best_effort_delete(client, image_id, auth)
    return outcome


def freeze(
    client: httpx.Client,
    server: LocalServer,
    store: str,
    request: str,
    paths: list[str],
    auth: dict[str, str],
    outcome: StallOutcome,
) -> None:
    """Freeze one store, time `request` on each path, /ready and /health; resume, await /ready."""
    progress(f"stall: freezing {store} (SIGSTOP)")
    server.pause()
    try:
        for path in paths:
            outcome.probes.append(probe(client, store, request, 503, path, headers=auth)[0])
        ready, response = probe(client, store, READY, 503, "/ready")
        outcome.probes.append(ready)
        outcome.ready_checks[store] = ready_checks(response)
        outcome.probes.append(probe(client, store, HEALTH, 200, "/health")[0])
    finally:
        server.resume()
    # Ready again before the next store is frozen: its numbers must not include this recovery.
    outcome.recovery_s[store] = wait_until_ready(client)
