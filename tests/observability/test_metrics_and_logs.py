"""What an operator sees: /metrics, JSON logs with request ids, a graceful stop."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.images import complete, png_bytes, presign, put_bytes, upload_image
from tests.processes import ServeProcess, start_serve

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    process = start_serve(
        tmp_path_factory.mktemp("ops"), CIS_LOG_FORMAT="json", CIS_METRICS_TOKEN="scrape-me"
    )
    yield process
    process.stop()


def _records(served: ServeProcess) -> list[dict[str, Any]]:
    found = []
    for line in served.lines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_metrics_count_requests_and_the_domain_without_ids(served: ServeProcess) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as api:
        image_id = upload_image(api, "ops-user", png_bytes())["image_id"]
        assert complete(api, image_id).status_code == 200
        bad = upload_image(api, "ops-user", b"<html>")["image_id"]
        assert complete(api, bad).status_code == 422
        assert api.get("/metrics").status_code == 401  # CIS_METRICS_TOKEN is set
        text = api.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).text
    assert 'handler="/images/{image_id}/complete"' in text  # the route template
    assert 'status="2xx"' in text
    assert "cis_uploads_created_total" in text
    assert 'cis_verifications_total{reason="none",result="ready"}' in text
    assert 'cis_verifications_total{reason="type_mismatch",result="rejected"}' in text
    assert "cis_verification_seconds_count" in text
    assert "cis_sweep_actions_total" in text or "cis_worker_oldest_event_age_seconds" in text
    assert not UUID.search(text)  # no label takes an image id (or a user id)
    assert "ops-user" not in text


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """No upload events: only the request under test verifies its upload."""
    process = start_serve(tmp_path_factory.mktemp("quiet"), CIS_LOG_FORMAT="json", CIS_EVENTS="off")
    yield process
    process.stop()


def test_every_line_of_a_request_carries_its_id(quiet: ServeProcess) -> None:
    served = quiet
    with httpx.Client(base_url=served.url, timeout=30) as api:
        upload = presign(api, "ops-user")
        put_bytes(upload, b"not an image at all")
        answer = api.post(
            f"/images/{upload['image_id']}/complete", headers={"X-Request-ID": "trace-me.1"}
        )
        assert answer.status_code == 422
        assert answer.headers["X-Request-ID"] == "trace-me.1"
        assert answer.json()["request_id"] == "trace-me.1"
        replaced = api.get("/health", headers={"X-Request-ID": "no spaces allowed"})
        assert replaced.headers["X-Request-ID"] != "no spaces allowed"
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,128}", replaced.headers["X-Request-ID"])
    time.sleep(0.5)
    mine = [r for r in _records(served) if r.get("request_id") == "trace-me.1"]
    access = [r for r in mine if r["logger"] == "cloud_image_service.access"]
    assert len(access) == 1
    line = access[0]
    assert (line["method"], line["route"], line["status"]) == (
        "POST",
        "/images/{image_id}/complete",
        422,
    )
    assert line["image_id"] == upload["image_id"]
    assert line["duration_ms"] > 0
    rejected = [r for r in mine if "rejected" in r["message"]]
    assert rejected  # the domain's line, from another module, with the same id
    assert rejected[0]["image_id"] == upload["image_id"]


def test_the_worker_logs_each_event_with_its_image(served: ServeProcess) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as api:
        image_id = upload_image(api, "ops-user", png_bytes())["image_id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = [
            r
            for r in _records(served)
            if r.get("image_id") == image_id and str(r["message"]).startswith("event:")
        ]
        if events:
            break
        time.sleep(0.2)
    assert events, "no event line for the upload"


def test_sigterm_finishes_requests_in_flight(tmp_path_factory: pytest.TempPathFactory) -> None:
    served = start_serve(tmp_path_factory.mktemp("stop"), CIS_LOG_FORMAT="json")
    # A request whose body arrives in two halves, SIGTERM in between: in flight for sure.
    headers_sent, resume = threading.Event(), threading.Event()
    results: list[httpx.Response] = []

    def body() -> Iterator[bytes]:
        yield b'{"user_id": "stop-user", '
        headers_sent.set()  # the first half is written when the second is asked for
        resume.wait(30)
        yield b'"content_type": "image/png"}'

    def slow_request() -> None:
        with httpx.Client(base_url=served.url, timeout=30) as api:
            headers = {"Content-Type": "application/json"}
            results.append(api.post("/images/upload", content=body(), headers=headers))

    thread = threading.Thread(target=slow_request)
    thread.start()
    assert headers_sent.wait(30)
    time.sleep(0.2)
    served.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    refused = False
    while not refused and time.monotonic() < deadline:
        try:
            httpx.get(f"{served.url}/health", timeout=2)
            time.sleep(0.05)
        except httpx.TransportError:
            refused = True  # no longer accepting, while the request is still open
    assert refused
    resume.set()
    thread.join(30)
    # uvicorn shuts down gracefully, then re-raises the signal: the exit says "terminated".
    assert served.process.wait(30) in (0, -signal.SIGTERM)
    assert "Finished server process" in served.log.read_text()
    assert [response.status_code for response in results] == [201], results[0].text
