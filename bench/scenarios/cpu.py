"""Service CPU per request of three hot routes, on a service of its own per backend.

The issue: a presign in at most 1.5 ms of service CPU. For each backend the scenario starts
`cloud-image-service serve` itself (a child process, output to a log in the scratch dir) as
the request path ships: authentication off (`CIS_AUTH_MODE=none`), the rate limiter on but
never refusing (`CIS_RATE_LIMIT=1000000/minute`: one counter update in DynamoDB per upload),
`CIS_EVENTS=off` and the default log level (the access log included). It seeds
`LIST_IMAGES` ready images through the API (presign, PUT of a tiny PNG, complete), then
times `POST /images/upload`, `GET /images/{id}/download` and `GET /images?user_id=U&limit=50`
at each `--cpu-concurrency`. The CPU: utime + stime of the service process over the timed
requests, divided by the successful ones.

`aws`: SeaweedFS and DynamoDB Local, the stores this run started (skipped with `--url`).
`embedded`: moto inside the service process, whose CPU therefore includes moto's S3 and
DynamoDB servers: higher, and not comparable to `aws`.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    Auth,
    Target,
    clean_environ,
    http_client,
    progress,
    service_log_summary,
    start_service,
    store_env,
)
from bench.load import CLOCK_TICKS, Result, Send, cpu_ticks, run_load, summarize
from bench.plan import Plan
from bench.scenarios.listing import PAGE_SIZE, fetch_page, first_page_sender
from bench.steps import FlowFailed, complete, presign, put_upload, sample_png, sha256_hex

AWS, EMBEDDED = "aws", "embedded"
UPLOAD = "POST /images/upload"
DOWNLOAD = "GET /images/{id}/download"
LIST = f"GET /images ({PAGE_SIZE})"
TARGETS_MS = {UPLOAD: 1.5, DOWNLOAD: 1.0, LIST: 3.0}  # on `aws`, at every concurrency
LIST_IMAGES = 60  # ready images of the listed user: more than one page
SEED_THREADS = 8
PNG_SIDE = 8  # an 8 x 8 PNG: the routes timed never read the bytes
RATE_LIMIT = "1000000/minute"
# What both backends share: the request path as it ships (CIS_LOG_LEVEL is left unset).
SERVICE_ENV = {"CIS_AUTH_MODE": "none", "CIS_RATE_LIMIT": RATE_LIMIT, "CIS_EVENTS": "off"}
# Idle: at most a fifth of a core over a second (the embedded worker's variant polling alone
# takes about 7%); the seeding's variants must be made before anything is timed.
IDLE_WINDOW_S = 1.0
IDLE_SHARE = 0.2
IDLE_TIMEOUT_S = 120.0
NO_AUTH = Auth("none (CIS_AUTH_MODE=none)", "the cpu scenario's service runs without auth")


@dataclass(frozen=True)
class CpuRow:
    """One request at one concurrency on one backend; the CPU is per successful request."""

    backend: str
    result: Result


@dataclass(frozen=True)
class CpuOutcome:
    """The rows, why a backend was not measured, and each service's log summary."""

    warmup: int  # untimed requests before each row
    rows: tuple[CpuRow, ...] = ()
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)  # backend -> why
    errors: dict[str, str] = dataclasses.field(default_factory=dict)  # backend -> what failed
    logs: dict[str, dict[str, Any] | None] = dataclasses.field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """A backend's service or seeding failed, or a timed request did."""
        return bool(self.errors) or any(row.result.errors for row in self.rows)


# ------------------------------------------------------------------------------- requests


def upload_send(user_id: str) -> Send:
    """POST /images/upload with the issue's body; 201 is success."""
    body = {"user_id": user_id, "content_type": "image/png"}

    def send(client: httpx.Client, _: int) -> bool:
        return client.post("/images/upload", json=body).status_code == 201

    return send


def download_send(image_ids: list[str]) -> Send:
    """GET /images/{id}/download of the ready images in turn; 200 is success."""

    def send(client: httpx.Client, index: int) -> bool:
        image_id = image_ids[index % len(image_ids)]
        return client.get(f"/images/{image_id}/download").status_code == 200

    return send


def ready_image(client: httpx.Client, user_id: str, png: bytes, index: int) -> str:
    """presign -> PUT to `upload_url` -> complete: the id of a ready image (FlowFailed if not)."""
    image_id, upload = presign(client, user_id, png, f"cpu-{index}.png", ["bench"], {})
    put_upload(client, upload, png)
    complete(client, image_id, sha256_hex(png), {})
    return image_id


def seed(service: Target, user_id: str) -> list[str]:
    """`LIST_IMAGES` ready images of `user_id` through the API; the first page must be full."""
    png = sample_png(PNG_SIDE)
    with (
        http_client(service.base_url, 2 * SEED_THREADS) as client,
        ThreadPoolExecutor(SEED_THREADS) as pool,
    ):
        ids = list(pool.map(partial(ready_image, client, user_id, png), range(LIST_IMAGES)))
        try:
            listed = len(fetch_page(client, user_id, None, {})["items"])
        except httpx.HTTPError as exc:
            raise FlowFailed(f"list: {exc}") from exc
    if listed != PAGE_SIZE:
        raise FlowFailed(f"list: {listed} of {LIST_IMAGES} ready images on the first page")
    return ids


def wait_idle(pid: int | None) -> None:
    """Wait until the service stays nearly idle for a second: work the seeding started in the
    background (on `embedded`, the in-process worker makes each image's variants) must not
    count in the timed rows."""
    if pid is None:
        return
    deadline = time.monotonic() + IDLE_TIMEOUT_S
    before = cpu_ticks(pid) or 0
    while time.monotonic() < deadline:
        time.sleep(IDLE_WINDOW_S)
        after = cpu_ticks(pid) or 0
        if after - before <= IDLE_SHARE * IDLE_WINDOW_S * CLOCK_TICKS:
            return
        before = after
    progress(f"cpu: the service was still busy after {IDLE_TIMEOUT_S:.0f} s; measuring anyway")


# ---------------------------------------------------------------------------------- run


def measure(service: Target, plan: Plan, backend: str, run_id: str) -> list[CpuRow]:
    """Seed, then each request at each concurrency (after `plan.warmup` untimed ones)."""
    lister = f"bench-{run_id}-cpu-lister"
    progress(f"cpu: {backend}: seeding {LIST_IMAGES} ready images through the API (untimed)")
    ids = seed(service, lister)
    wait_idle(service.pid)
    sends = (
        (UPLOAD, upload_send(f"bench-{run_id}-cpu-uploader")),
        (DOWNLOAD, download_send(ids)),
        (LIST, first_page_sender(lister, {})),
    )
    rows = []
    for label, send in sends:
        # moto's Query costs about 300 ms of the embedded service's CPU a page: a tenth as
        # many list requests there keep the run short (the figure is per request anyway).
        count = plan.cpu_requests // 10 if (backend, label) == (EMBEDDED, LIST) else None
        count = count or plan.cpu_requests
        for concurrency in plan.cpu_concurrency:
            progress(f"cpu: {backend}: {label}, {count} requests, {concurrency} clients")
            timings, wall_s, ticks = run_load(service, send, concurrency, count, plan.warmup)
            result = summarize(label, None, concurrency, timings, wall_s, ticks)
            rows.append(CpuRow(backend, per_success(result)))
    return rows


def per_success(result: Result) -> Result:
    """The result with its CPU divided by the successful requests instead of all of them."""
    succeeded = result.requests - result.errors
    if result.cpu_ms_per_request is None or not succeeded:
        return dataclasses.replace(result, cpu_ms_per_request=None)
    cpu = result.cpu_ms_per_request * result.requests / succeeded
    return dataclasses.replace(result, cpu_ms_per_request=cpu)


def backend_env(target: Target, backend: str) -> dict[str, str] | None:
    """The service's environment on `backend`; None when `aws` has no managed stores."""
    if backend == EMBEDDED:
        return clean_environ() | {"CIS_BACKEND": EMBEDDED, **SERVICE_ENV}
    if target.stores is None:
        return None
    # `aws` refuses to start without authentication unless told it is insecure on purpose.
    stores = store_env(target.stores.s3, target.stores.dynamodb)
    return stores | SERVICE_ENV | {"CIS_ALLOW_INSECURE": "true"}


def run_backend(
    target: Target, plan: Plan, backend: str, env: dict[str, str], scratch: Path, run_id: str
) -> tuple[list[CpuRow], str | None, dict[str, Any] | None]:
    """Start the backend's service, measure, stop it: the rows, an error, the log summary."""
    log = scratch / f"cpu-{backend}.log"
    progress(f"cpu: {backend}: starting a service of its own (log {log})")
    rows, error = [], None
    with ExitStack() as stack:  # closing it stops the service (stop_process)
        try:
            base_url, pid = start_service(stack, env, scratch, log)
            service = dataclasses.replace(target, base_url=base_url, pid=pid, auth=NO_AUTH, log=log)
            rows = measure(service, plan, backend, run_id)
        except SystemExit as exc:  # start_service's way of failing: this backend only
            error = f"the service did not start: {str(exc.code).splitlines()[0]}"
        except FlowFailed as exc:
            error = f"seeding failed: {exc}"
    if error is not None:
        progress(f"cpu: {backend}: {error}")
    return rows, error, service_log_summary(log)


def run(target: Target, plan: Plan, run_id: str) -> CpuOutcome:
    """Each backend in turn: its own service, seeded, measured and stopped."""
    # The managed service's scratch dir (removed at the end of the run), else one of our own.
    if target.log is not None:
        return run_backends(target, plan, run_id, target.log.parent)
    scratch = Path(tempfile.mkdtemp(prefix="cis-bench-cpu-"))
    try:
        return run_backends(target, plan, run_id, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_backends(target: Target, plan: Plan, run_id: str, scratch: Path) -> CpuOutcome:
    """`aws` (unless there are no managed stores), then `embedded`."""
    rows: list[CpuRow] = []
    skipped, errors, logs = {}, {}, {}
    for backend in (AWS, EMBEDDED):
        env = backend_env(target, backend)
        if env is None:
            skipped[backend] = "--url: it needs the SeaweedFS and DynamoDB Local this run starts"
            progress(f"cpu: {backend}: skipped ({skipped[backend]})")
            continue
        made, error, logs[backend] = run_backend(target, plan, backend, env, scratch, run_id)
        rows += made
        if error is not None:
            errors[backend] = error
    return CpuOutcome(plan.warmup, tuple(rows), skipped, errors, logs)
