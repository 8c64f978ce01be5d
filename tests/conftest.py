"""Fixtures that start real servers: the stores, and the app under uvicorn on loopback.

Two backend sets run the same suite: `embedded` (the service starts moto itself) and
`real` (SeaweedFS for S3, which enforces presigned-URL rules, and DynamoDB Local).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from cloud_image_service.api.app import create_app
from cloud_image_service.config import Settings
from cloud_image_service.local.devstores import DynamoDBLocal, SeaweedS3, free_port, start_stores
from cloud_image_service.local.embedded import EmbeddedServer
from cloud_image_service.runtime import Runtime, build_runtime
from tests.images import png_bytes


class AppServer:
    """The app under uvicorn in a background thread, on a free loopback port."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.app = app
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def start(self) -> AppServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


# `make test-localstack` points the real-backend tests at LocalStack instead (its URL).
LOCALSTACK = os.environ.get("CIS_TEST_LOCALSTACK")
# The backend of the tests that need S3 events through SQS (SeaweedFS sends none).
EVENTS_BACKEND = "real" if LOCALSTACK else "embedded"


@dataclass
class RealStores:
    """Real S3 and DynamoDB servers, and the settings that point the service at them.

    SeaweedFS + DynamoDB Local (`s3`, `dynamodb` are then their servers, which tests may
    stop or freeze), or LocalStack for S3, DynamoDB and SQS (`make test-localstack`).
    """

    s3_url: str
    dynamodb_url: str
    env: dict[str, str] = field(default_factory=dict)
    sqs_url: str | None = None
    s3: SeaweedS3 | None = None
    dynamodb: DynamoDBLocal | None = None

    @classmethod
    def of(cls, s3: SeaweedS3, dynamodb: DynamoDBLocal, env: dict[str, str]) -> RealStores:
        """SeaweedFS and DynamoDB Local."""
        return cls(s3.endpoint_url, dynamodb.endpoint_url, env, None, s3, dynamodb)

    @property
    def seaweed(self) -> SeaweedS3:
        """The SeaweedFS server, for tests that stop or freeze it."""
        assert self.s3 is not None, "SeaweedFS only"
        return self.s3

    @property
    def dynamodb_local(self) -> DynamoDBLocal:
        """The DynamoDB Local server, for tests that stop or freeze it."""
        assert self.dynamodb is not None, "DynamoDB Local only"
        return self.dynamodb

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "backend": "aws",
            "s3_endpoint_url": self.s3_url,
            "dynamodb_endpoint_url": self.dynamodb_url,
            "bucket": f"test-{uuid.uuid4().hex[:12]}",
            "table": f"test-{uuid.uuid4().hex[:12]}",
            "cursor_secret": "test-secret",
            "aws_timeout_seconds": 2.0,
            "allow_insecure": True,  # these suites test the API without authentication
        }
        if self.sqs_url is not None:  # S3 events through SQS, handled in-process
            values |= {
                "sqs_endpoint_url": self.sqs_url,
                "events": "sqs",
                "worker_in_process": True,
                "queue_name": f"test-{uuid.uuid4().hex[:12]}",
            }
        return Settings(**(values | overrides))

    def run_cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """`cloud-image-service ARGS` in a subprocess on these stores; no inherited CIS_*."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("CIS_")}
        environment = inherited | self.env | env
        environment |= {
            "CIS_BACKEND": "aws",
            "CIS_S3_ENDPOINT_URL": self.s3_url,
            "CIS_DYNAMODB_ENDPOINT_URL": self.dynamodb_url,
        }
        if self.sqs_url is not None:
            environment |= {"CIS_SQS_ENDPOINT_URL": self.sqs_url, "CIS_EVENTS": "off"}
        command = [sys.executable, "-m", "cloud_image_service.cli.main", *args]
        return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def real_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealStores]:
    """Started once per session: SeaweedFS and DynamoDB Local on free ports (or LocalStack)."""
    if LOCALSTACK:
        yield from _localstack()
        return
    s3, dynamodb = start_stores(tmp_path_factory.mktemp("seaweed"))
    env = {
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # the `aws` backend uses boto3's standard credential chain
    try:
        yield RealStores.of(s3, dynamodb, env)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        s3.stop()
        dynamodb.stop()


def _localstack() -> Iterator[RealStores]:
    """LocalStack, started by `make test-localstack` (scripts/localstack.sh)."""
    assert LOCALSTACK is not None
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    env |= {"AWS_DEFAULT_REGION": "us-east-1"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield RealStores(LOCALSTACK, LOCALSTACK, env, LOCALSTACK)


def start_app(settings: Settings) -> AppServer:
    """Start the app; on `aws` create its bucket, tables and queue first, as `init` does."""
    if settings.backend == "aws":
        build_runtime(settings).init_resources()
    return AppServer(create_app(settings)).start()


@pytest.fixture(scope="session", params=["real"] if LOCALSTACK else ["embedded", "real"])
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend set under test."""
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def service(backend: str, request: pytest.FixtureRequest) -> Iterator[AppServer]:
    """The running service on the current backend set (one per set and session)."""
    if backend == "embedded":
        settings = Settings(backend="embedded", cursor_secret="test-secret")
    else:
        stores: RealStores = request.getfixturevalue("real_stores")
        settings = stores.settings()
    server = start_app(settings)
    yield server
    server.stop()


@pytest.fixture
def api(service: AppServer) -> Iterator[httpx.Client]:
    """An HTTP client of the running service."""
    with httpx.Client(base_url=service.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's server (S3, DynamoDB, SQS) on a loopback port, for adapter tests."""
    server = EmbeddedServer()
    server.start()
    try:
        yield server.endpoint_url
    finally:
        server.stop()


@pytest.fixture
def user_id() -> str:
    """A user of its own for each test, so tests never see each other's images."""
    return f"user-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def png() -> bytes:
    """A small valid PNG."""
    return png_bytes()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """On LocalStack, a known difference of its S3 is skipped with the reason."""
    if LOCALSTACK and item.get_closest_marker("localstack_differs") is not None:
        pytest.skip("LocalStack's free S3 serves an unsigned GET of a private object")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A test that cannot run is a failure, not a skip (a missing tool must not go unseen)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if LOCALSTACK and item.get_closest_marker("localstack_differs") is not None:
        return  # the one skip a LocalStack run allows: a known difference, with its reason
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, which this suite counts as a failure: {report.longrepr}"
