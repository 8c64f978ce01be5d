"""Prometheus metrics: HTTP requests by route template (api/access.py), and the domain's.

No label ever takes a user id or an image id: each label has a small, fixed set of
values, so the number of series stays bounded whatever the traffic.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

# The names and labels of prometheus-fastapi-instrumentator's defaults, which dashboards know;
# counted by the access log (api/access.py), which already has the route and the status.
HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by route template, method and status class (2xx, 4xx, 5xx).",
    ["handler", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["handler", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
UPLOADS_CREATED = Counter(
    "cis_uploads_created_total", "Uploads asked for (pending records created).", ["kind"]
)
VERIFICATIONS = Counter(
    "cis_verifications_total",
    "Verifications decided, by result (ready, rejected) and reason category.",
    ["result", "reason"],
)
VERIFICATION_SECONDS = Histogram(
    "cis_verification_seconds",
    "Time to verify an upload: copy, read, decode, hash.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
VARIANT_SECONDS = Histogram(
    "cis_variant_seconds",
    "Time to make an image's missing variants, by result (made, failed).",
    ["result"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SWEEP_ACTIONS = Counter("cis_sweep_actions_total", "What the sweep did.", ["action"])
BACKEND_ERRORS = Counter(
    "cis_backend_errors_total",
    "Calls to a store that failed (network, timeout, 5xx, throttling).",
    ["store", "operation"],
)
OLDEST_EVENT_AGE = Gauge(
    "cis_worker_oldest_event_age_seconds",
    "Age of the oldest S3 upload event in the last batch the worker handled.",
)
RATE_LIMITED = Counter(
    "cis_rate_limit_refusals_total", "Requests refused by a rate limit.", ["limit"]
)

# Reasons for a rejection, by what its message says (the message itself is free text).
_REASONS = (
    ("does not match", "type_mismatch"),
    ("empty", "empty"),
    ("above the limit", "too_large"),
    ("larger than the limit", "too_large"),
    ("pixel", "too_many_pixels"),
    ("truncated", "truncated"),
    ("end marker", "trailing_data"),
    ("does not decode", "undecodable"),
    ("expired", "expired"),
    ("aborted", "aborted"),
    ("too large", "too_large"),
    ("disappeared", "missing"),
)


def reason_category(reason: str) -> str:
    """A bounded label for a rejection reason."""
    lowered = reason.lower()
    return next((label for text, label in _REASONS if text in lowered), "other")


def verified(result: str, reason: str | None = None) -> None:
    """Count one verification's verdict."""
    VERIFICATIONS.labels(result, reason_category(reason) if reason else "none").inc()


@contextmanager
def timed(histogram: Histogram, **labels: str) -> Iterator[None]:
    """Observe the block's duration in `histogram`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        target: Any = histogram.labels(**labels) if labels else histogram
        target.observe(time.perf_counter() - started)


def count_store_errors(client: Any, store: str) -> None:
    """Count the failed calls of a boto3 client, by operation (botocore's event hooks)."""

    def on_error(event_name: str, **_: Any) -> None:
        BACKEND_ERRORS.labels(store, event_name.rsplit(".", 1)[-1]).inc()

    def on_response(event_name: str, http_response: Any = None, **_: Any) -> None:
        status = getattr(http_response, "status_code", 0)
        if status >= 500 or status == 429:
            BACKEND_ERRORS.labels(store, event_name.rsplit(".", 1)[-1]).inc()

    client.meta.events.register("after-call-error", on_error)
    client.meta.events.register("after-call", on_response)
