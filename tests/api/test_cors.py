"""CORS a newcomer cannot get wrong: loopback on embedded, validated origins, bucket check."""

from __future__ import annotations

import logging

import httpx
import pytest
from pydantic import ValidationError

from cloud_image_service.api.app import create_app
from cloud_image_service.config import Settings
from tests.conftest import AppServer, RealStores, start_app


def _allowed(client: httpx.Client, origin: str) -> str | None:
    preflight = client.options(
        "/images",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
    )
    allowed: str | None = preflight.headers.get("access-control-allow-origin")
    return allowed


def test_embedded_allows_loopback_origins_by_default(service: AppServer, backend: str) -> None:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        if backend == "embedded":
            assert _allowed(client, "http://localhost:5173") == "http://localhost:5173"
            assert _allowed(client, "http://127.0.0.1:8080") == "http://127.0.0.1:8080"
        else:  # aws with no origin configured: CORS is off
            assert _allowed(client, "http://localhost:5173") is None
        assert _allowed(client, "https://evil.example") is None
        assert _allowed(client, "http://localhost.evil.example") is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("https://app.example.com/", "trailing slash"),
        ("https://app.example.com/path", "path"),
        ("app.example.com", "scheme://host"),
        ("*", "'*' is refused"),
        ('["https://a.example", ', "not a valid JSON list"),
    ],
)
def test_origins_that_are_not_origins_are_refused(value: str, problem: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(cors_origins=value)
    assert problem in str(raised.value)


def test_both_documented_forms_parse() -> None:
    expected = ["https://app.example.com", "http://localhost:5173"]
    assert Settings(cors_origins="https://app.example.com, http://localhost:5173").cors_origins == (
        expected
    )
    as_json = '["https://app.example.com", "http://localhost:5173"]'
    assert Settings(cors_origins=as_json).cors_origins == expected


@pytest.mark.real
def test_serve_warns_when_the_bucket_cors_lacks_an_origin(
    real_stores: RealStores, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cloud_image_service")
    settings = real_stores.settings(cors_origins="https://app.example.com")
    server = start_app(settings)  # creates the bucket with that origin, as `init` does
    server.stop()
    assert "CORS allows: https://app.example.com" in caplog.text
    caplog.clear()
    other = settings.model_copy(update={"cors_origins": ["https://other.example.com"]})
    server = AppServer(create_app(other))
    server.start()
    server.stop()
    assert "does not allow https://other.example.com" in caplog.text
