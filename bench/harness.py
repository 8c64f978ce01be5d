"""The service under test: started with its stores as child processes, or found at `--url`.

SeaweedFS and DynamoDB Local through `cloud_image_service.local.devstores`, then
`cloud-image-service init` and `serve`; the service's environment, the credential of the API
requests (JWTs minted per user) and the HTTP clients. `bench.load` measures with them.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
import httpx
from botocore.config import Config
from pydantic import SecretStr

from bench.plan import Plan
from cloud_image_service.auth.tokens import mint_token
from cloud_image_service.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from cloud_image_service.local.devstores import DynamoDBLocal, SeaweedS3

ROOT = Path(__file__).resolve().parent.parent
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
REGION = "us-east-1"
BUCKET = "cis-bench"
TABLE = "cis-bench-images"
REQUEST_TIMEOUT_S = 30.0
STARTUP_TIMEOUT_S = 60.0
INIT_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
TOKEN_TTL_S = 3600  # tokens are minted when a scenario starts: an hour outlasts any scenario
TOKEN_ENV = "CIS_BENCH_TOKEN"
MAX_LOG_EXAMPLES = 5
LOG_PROBLEMS = frozenset({"WARNING", "ERROR", "CRITICAL"})


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout is only the report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


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
class Stores:
    """The managed stores (the stall scenario freezes them) and the service's store timeouts."""

    s3: SeaweedS3
    dynamodb: DynamoDBLocal
    aws_timeout_s: float  # CIS_AWS_TIMEOUT_SECONDS in effect
    aws_max_attempts: int  # CIS_AWS_MAX_ATTEMPTS in effect
    ready_timeout_s: float  # CIS_READY_TIMEOUT_SECONDS in effect


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
    stores: Stores | None = None  # None: an external service (--url)


def require_local(url: str) -> None:
    """All traffic of the benchmark stays on this machine."""
    host = urlsplit(url).hostname
    if host not in LOCAL_HOSTS:
        sys.exit(f"refusing {url}: the benchmark only talks to 127.0.0.1")


def http_client(
    base_url: str, connections: int, timeout: float = REQUEST_TIMEOUT_S
) -> httpx.Client:
    """A keep-alive pool sized to the concurrency; proxies from the environment are ignored."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.Client(base_url=base_url, limits=limits, timeout=timeout, trust_env=False)


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


# ----------------------------------------------------------------------- managed processes


def free_port() -> int:
    """A port nobody listens on right now (the service binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environ() -> dict[str, str]:
    """This process's environment without its AWS_* and CIS_* variables: a service the
    benchmark starts is configured by the benchmark alone."""
    return {
        name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "CIS_"))
    }


def store_env(s3: SeaweedS3, ddb: DynamoDBLocal) -> dict[str, str]:
    """The `aws` backend on the managed stores (the bucket and table `init` made), a new
    cursor secret; authentication, rate limit and logs are the caller's to add."""
    return clean_environ() | {
        "CIS_BACKEND": "aws",
        "CIS_REGION": REGION,
        "CIS_S3_ENDPOINT_URL": s3.endpoint_url,
        "CIS_DYNAMODB_ENDPOINT_URL": ddb.endpoint_url,
        "CIS_BUCKET": BUCKET,
        "CIS_TABLE": TABLE,
        "CIS_CURSOR_SECRET": secrets.token_hex(32),
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_DEFAULT_REGION": REGION,
    }


def service_env(
    s3: SeaweedS3, ddb: DynamoDBLocal, log_level: str, jwt_secret: str, extra: dict[str, str]
) -> dict[str, str]:
    """The service's whole configuration; inherited AWS_* and CIS_* variables are dropped."""
    # Authentication on, as in production (`aws` refuses to start without it); no rate limit,
    # which would answer 429 to the upload scenarios. `extra`: the store timeouts if given.
    return store_env(s3, ddb) | {
        "CIS_AUTH_MODE": "jwt",
        "CIS_JWT_SECRET": jwt_secret,
        "CIS_RATE_LIMIT": "",
        "CIS_LOG_LEVEL": log_level,
        **extra,
    }


def timeout_overrides(args: argparse.Namespace) -> dict[str, str]:
    """CIS_AWS_TIMEOUT_SECONDS and CIS_AWS_MAX_ATTEMPTS when given; else the service's defaults."""
    extra = {}
    if args.aws_timeout is not None:
        extra["CIS_AWS_TIMEOUT_SECONDS"] = f"{args.aws_timeout:g}"
    if args.aws_max_attempts is not None:
        extra["CIS_AWS_MAX_ATTEMPTS"] = str(args.aws_max_attempts)
    return extra


def cli_path() -> str:
    """The console script next to the running interpreter (the venv's)."""
    return str(Path(sys.executable).with_name("cloud-image-service"))


def tail(path: Path, lines: int = 30) -> str:
    """The end of a log, for error messages."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def log_problem(line: str) -> str | None:
    """`LEVEL logger: message` of a warning or error line of the service's log, else None.

    JSON lines (the default outside `embedded`) or text (`time LEVEL logger: message`).
    """
    if line.startswith("{"):
        with suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("level") in LOG_PROBLEMS:
                return f"{record['level']} {record.get('logger')}: {record.get('message')}"
        return None
    parts = line.split(" ", 3)  # date, time, level, the rest
    return " ".join(parts[2:]) if len(parts) == 4 and parts[2] in LOG_PROBLEMS else None


def service_log_summary(log: Path | None) -> dict[str, Any] | None:
    """Warnings and errors the service logged: they often explain a number."""
    if log is None or not log.exists():
        return None
    lines = log.read_text(errors="replace").splitlines()
    problems = [problem for line in lines if (problem := log_problem(line)) is not None]
    # Without the timestamp, repeats of one message collapse into one example.
    distinct = dict.fromkeys(problems)
    return {"count": len(problems), "examples": list(distinct)[:MAX_LOG_EXAMPLES]}


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
    extra = timeout_overrides(args)
    env = service_env(s3, ddb, args.service_log_level, jwt_secret, extra)
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
    description += "".join(f", {name}={value}" for name, value in extra.items())
    # The values the service runs with: the given ones, else the defaults it reads itself.
    defaults = Settings.model_fields
    stores = Stores(
        s3,
        ddb,
        float(extra.get("CIS_AWS_TIMEOUT_SECONDS", defaults["aws_timeout_seconds"].default)),
        int(extra.get("CIS_AWS_MAX_ATTEMPTS", defaults["aws_max_attempts"].default)),
        float(defaults["ready_timeout_seconds"].default),
    )
    auth = managed_auth(jwt_secret)
    return Target(base_url, pid, client, TABLE, auth, description, log, stores)


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
