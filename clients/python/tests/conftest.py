"""The service the SDK and CLI tests talk to: `cloud-image-service serve` (embedded backend:
S3, DynamoDB and SQS in memory) started as a subprocess on a free port, once per session.

Two services: `service` (authentication off, as `make run`) and `guarded` (JWT
authentication and `CIS_RATE_LIMIT=2/second`, for 401 and 429). They need the service's
package next to the interpreter (`pip install -e .` at the repository's root); without it
the tests are skipped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image as PillowImage

from cloud_image_client import Client, Image

STARTUP_TIMEOUT_S = 60.0
VARIANTS_TIMEOUT_S = 60.0  # about 1 s on a quiet machine; a shared one under load is slower
SERVICE = Path(sys.executable).with_name("cloud-image-service")


def hs256_token(secret: str, user: str, ttl: int = 3600) -> str:
    """A JWT as `cloud-image-service token --user USER` makes it (HS256, sub, iat, exp)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": user, "iat": now, "exp": now + ttl}).encode())
    signature = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256)
    return f"{header}.{claims}.{b64(signature.digest())}"


@dataclass
class Service:
    """A running service: its URL, environment, process and log."""

    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def token(self, user: str) -> str:
        """A JWT for `user`, signed with the service's CIS_JWT_SECRET."""
        return hs256_token(self.env["CIS_JWT_SECRET"], user)

    def wait_healthy(self) -> Service:
        """Returns once /health answers; fails the test with the log if it does not."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the service exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"the service did not answer /health:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def launch(workdir: Path, extra: dict[str, str]) -> Service:
    """`serve` on a free port, not waited for (both services start side by side)."""
    if not SERVICE.exists():
        pytest.skip(f"{SERVICE} not found: install the service (pip install -e .) to run these")
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("CIS_", "AWS_"))}
    env = inherited | {
        "CIS_HOST": "127.0.0.1",
        "CIS_PORT": str(port),
        "CIS_LOG_LEVEL": "warning",
        **extra,
    }
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "service.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(SERVICE), "serve"], env=env, cwd=workdir, stdout=output, stderr=subprocess.STDOUT
        )
    return Service(f"http://127.0.0.1:{port}", env, process, log)


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    """A scratch folder for the session (services' logs, big files)."""
    path = Path(tempfile.mkdtemp(prefix="cis-client-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Services:
    """The services of this session (or xdist worker), each launched once, when first needed."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: dict[str, Service] = {}
        secret = secrets.token_hex(32)
        self.configs = {
            "open": {},
            "guarded": {
                "CIS_AUTH_MODE": "jwt",
                "CIS_JWT_SECRET": secret,
                "CIS_RATE_LIMIT": "2/second",
            },
        }

    def launch(self, name: str) -> Service:
        """Start it if it is not started yet (without waiting for it)."""
        if name not in self.running:
            self.running[name] = launch(self.workdir / name, self.configs[name])
        return self.running[name]

    def stop(self) -> None:
        for running in self.running.values():
            running.stop()


@pytest.fixture(scope="session")
def services(workdir: Path) -> Iterator[Services]:
    """The session's services, stopped at its end."""
    registry = Services(workdir)
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def service(services: Services) -> Service:
    """Authentication off, events on, variants made in-process (the default of `make run`)."""
    started = services.launch("open")
    if "PYTEST_XDIST_WORKER" not in os.environ:
        # One process runs every test: start the other service now, side by side (each
        # takes seconds). Under xdist a worker starts only what its own tests ask for.
        services.launch("guarded")
    return started.wait_healthy()


@pytest.fixture(scope="session")
def guarded(services: Services) -> Service:
    """JWT authentication and an upload rate limit of 2 per second per caller."""
    return services.launch("guarded").wait_healthy()


@pytest.fixture
def user() -> str:
    """A user of the test's own: every test sees only its images."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """The test's own resume-state folder."""
    return tmp_path / "state"


@pytest.fixture
def client(service: Service, state_dir: Path) -> Iterator[Client]:
    """A client of the open service."""
    with Client(service.url, state_dir=state_dir) as made:
        yield made


def png_bytes(side: int, seed: int | None = None, compress_level: int = 6) -> bytes:
    """A PNG of RGB noise (noise does not compress: about 3 x side^2 bytes)."""
    rng = random.Random(seed)
    noise = rng.randbytes(side * side * 3)
    buffer = io.BytesIO()
    PillowImage.frombytes("RGB", (side, side), noise).save(
        buffer, format="PNG", compress_level=compress_level
    )
    return buffer.getvalue()


@pytest.fixture(scope="session")
def big_png(workdir: Path) -> Path:
    """A valid PNG of about 20 MiB (2600 x 2600 noise, not compressed): three 8 MiB parts."""
    path = workdir / "big.png"
    path.write_bytes(png_bytes(2600, compress_level=0))
    return path


def wait_for_variants(client: Client, image_id: str, timeout: float = VARIANTS_TIMEOUT_S) -> Image:
    """The image once its variants are listed (the worker makes them about 1 s after ready)."""
    deadline = time.monotonic() + timeout
    while True:
        image = client.get(image_id)
        if image.variants or time.monotonic() > deadline:
            return image
        time.sleep(0.25)
