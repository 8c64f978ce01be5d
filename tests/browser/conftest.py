"""The gallery in a real browser: Debian's Chromium driven by Playwright, on real stores.

S3 is SeaweedFS started with `allowed_origins` set to an origin no page has, so SeaweedFS
itself answers CORS for nobody and the bucket's CORS rules decide, as on AWS (moto, and a
default SeaweedFS, answer any origin). The app serves the page at its own origin, which is
the one origin its settings (CIS_CORS_ORIGINS) and thus the bucket's CORS allow: its port is
chosen before the settings are made. SeaweedFS sends no S3 events: a thread makes the
variants, as `cloud-image-service worker` would next to the API.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    ViewportSize,
    sync_playwright,
)

from cloud_image_service.api.app import create_app
from cloud_image_service.config import Settings
from cloud_image_service.local.devstores import DynamoDBLocal, SeaweedS3, free_port
from cloud_image_service.runtime import Runtime
from tests.conftest import AppServer

log = logging.getLogger(__name__)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The only origin SeaweedFS answers CORS for by itself: no test page is there.
NOT_THE_PAGE = "http://not-the-page.example"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}

# Collects what the page itself reports: CSP violations (Playwright's init scripts are not
# subject to the page's CSP, so this listener runs before the page's own scripts).
_WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class GalleryServer(AppServer):
    """AppServer on a port chosen beforehand, so that the app's settings can name its origin."""

    def __init__(self, app: FastAPI, port: int) -> None:
        super().__init__(app)
        self.port = port
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)


class VariantWorker:
    """Makes due variants in a thread, every 0.2 s, until stopped; can be paused."""

    def __init__(self, runtime: Runtime) -> None:
        self.worker = runtime.make_worker()
        self.active = threading.Event()
        self.active.set()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="variant-worker")

    def _run(self) -> None:
        while not self.stopping.is_set():
            if self.active.is_set():
                try:
                    while self.worker.run_jobs_once() and not self.stopping.is_set():
                        pass
                except Exception:  # a test must see the symptom, not a dead thread
                    log.exception("variant worker: going on")
            self.stopping.wait(0.2)

    def start(self) -> VariantWorker:
        self.thread.start()
        return self

    def pause(self) -> None:
        self.active.clear()

    def resume(self) -> None:
        self.active.set()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)


@dataclass
class CorsStores:
    """SeaweedFS that leaves CORS to the bucket's rules, DynamoDB Local, and settings for them."""

    s3: SeaweedS3
    dynamodb: DynamoDBLocal

    def settings(self, **overrides: Any) -> Settings:
        """The `aws` backend on these stores; a bucket and a table of its own."""
        values: dict[str, Any] = {
            "backend": "aws",
            "s3_endpoint_url": self.s3.endpoint_url,
            "dynamodb_endpoint_url": self.dynamodb.endpoint_url,
            "bucket": f"gallery-{uuid.uuid4().hex[:12]}",
            "table": f"gallery-{uuid.uuid4().hex[:12]}",
            "cursor_secret": "test-secret",
            "aws_timeout_seconds": 2.0,
            "allow_insecure": True,  # authentication off unless a test turns it on
            "events": "off",  # SeaweedFS sends no S3 events
            "worker_in_process": False,  # VariantWorker makes the variants
        }
        return Settings(**(values | overrides))


@dataclass
class Gallery:
    """The running app, its variant worker, and where the browser finds it and S3."""

    server: GalleryServer
    worker: VariantWorker
    s3_origin: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def settings(self) -> Settings:
        return self.server.runtime.settings

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> None:
        self.worker.stop()
        self.server.stop()


def start_gallery(stores: CorsStores, **overrides: Any) -> Gallery:
    """The app on a port of its own, its origin allowed by its settings and the bucket."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    settings = stores.settings(cors_origins=origin, **overrides)
    server = GalleryServer(create_app(settings), port)
    server.start()
    try:
        server.runtime.init_resources()  # the bucket's CORS: this origin only, as `init` does
        worker = VariantWorker(server.runtime).start()
    except BaseException:
        server.stop()
        raise
    return Gallery(server, worker, origin_of(stores.s3.endpoint_url))


@pytest.fixture(scope="session")
def cors_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorsStores]:
    """SeaweedFS answering CORS only as the bucket says, and DynamoDB Local."""
    s3 = SeaweedS3(tmp_path_factory.mktemp("seaweed-cors"), allowed_origins=[NOT_THE_PAGE])
    s3.start()
    try:
        dynamodb = DynamoDBLocal()
        dynamodb.start()
    except BaseException:
        s3.stop()
        raise
    env = {
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # the `aws` backend uses boto3's standard credential chain
    try:
        yield CorsStores(s3, dynamodb)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        s3.stop()
        dynamodb.stop()


@pytest.fixture(scope="module")
def gallery(cors_stores: CorsStores) -> Iterator[Gallery]:
    """The app (authentication off) serving the gallery, with its variant worker."""
    running = start_gallery(cors_stores)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (`apt-get install chromium`), headless."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class PageWatch:
    """What a page did: console errors, uncaught errors, every request's URL."""

    page: Page
    console_errors: list[ConsoleMessage] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def attach(self) -> PageWatch:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request))
        return self

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message)

    def csp_violations(self) -> list[str]:
        """Violations the current document reported (the listener of _WATCH_CSP)."""
        found: list[str] = self.page.evaluate("() => window.__cspViolations || []")
        return found

    def foreign_requests(self, *origins: str) -> list[str]:
        """Requests to anything but these origins (data: and blob: URLs are the page's own)."""
        return [
            request.url
            for request in self.requests
            if not request.url.startswith(("data:", "blob:"))
            and origin_of(request.url) not in origins
        ]

    def unexpected_errors(self, *expected: tuple[int, str]) -> list[str]:
        """Console errors, but for `Failed to load resource` of (status, URL part) expected.

        Chromium logs every API answer >= 400 as a console error: a rejected upload's 422
        is the API saying why, not a fault of the page.
        """
        left = []
        for message in self.console_errors:
            url = message.location.get("url", "")
            if any(
                f"status of {status} " in message.text and part in url for status, part in expected
            ):
                continue
            left.append(f"{message.text} ({url})")
        return left + [f"uncaught: {error}" for error in self.page_errors]

    def assert_clean(self, *origins: str, expected: tuple[tuple[int, str], ...] = ()) -> None:
        """Nothing from other origins, no console error, no CSP violation."""
        assert self.foreign_requests(*origins) == []
        assert self.unexpected_errors(*expected) == []
        assert self.csp_violations() == []
        assert not [m for m in self.console_errors if "Content Security Policy" in m.text]


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile (its own sessionStorage and localStorage) for each test."""
    made = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    made.add_init_script(_WATCH_CSP)
    made.set_default_timeout(30_000)
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A tab of that profile."""
    return context.new_page()


@pytest.fixture
def watch(page: Page) -> PageWatch:
    """What the page does, recorded from the start."""
    return PageWatch(page).attach()


@pytest.fixture
def user() -> str:
    """A user of each test's own."""
    return f"browser-{uuid.uuid4().hex[:10]}"
