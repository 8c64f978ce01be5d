"""GET /images?user_id=U&limit=50 with a small and a large table, and the complete walk.

The table is seeded directly with batch_write_item: through the API 50,000 images would take
far too long.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.harness import Target, http_client, progress
from bench.load import Result, Send, run_load, summarize
from bench.plan import Plan
from cloud_image_service.adapters.items import to_item
from cloud_image_service.domain.models import Image, Status

PAGE_SIZE = 50
BATCH_SIZE = 25  # DynamoDB's maximum for batch_write_item
OTHER_USERS = 500  # images not owned by the user under test are spread over this many users
MAX_BATCH_ATTEMPTS = 12
MAX_SCAN_PAGES = 10_000
PROGRESS_EVERY_S = 2.0


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


@dataclass(frozen=True)
class ListingOutcome:
    """The first-page timings and the walk, at the small and then the large table."""

    results: list[Result]
    walks: list[Walk]


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
        """Count written items; report if the last report is old enough or all are done."""
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


def write_batch(target: Target, images: Sequence[Image]) -> None:
    """One batch_write_item of at most 25 images, retrying what DynamoDB left unprocessed."""
    table = target.table
    pending: list[Any] = [{"PutRequest": {"Item": to_item(image)}} for image in images]
    for attempt in range(MAX_BATCH_ATTEMPTS):
        response = target.dynamodb.batch_write_item(RequestItems={table: pending})
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

    def write(batch: Sequence[Image]) -> None:
        write_batch(target, batch)
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


def first_page_sender(user_id: str, auth: dict[str, str]) -> Send:
    """GET the first page of a user's images, with that user's credential; 200 is success."""

    def send(client: httpx.Client, _: int) -> bool:
        params: dict[str, str | int] = {"user_id": user_id, "limit": PAGE_SIZE}
        return client.get("/images", params=params, headers=auth).status_code == 200

    return send


def warm_up(target: Target, plan: Plan, user_id: str) -> None:
    """Untimed list requests before the first timed scenario."""
    # A fresh service and DynamoDB Local's JVM are slower (latency and service CPU) for their
    # first few hundred requests: without this the small table, measured first, looks slower
    # than the large one.
    if plan.stack_warmup:
        progress(f"warming up the stack with {plan.stack_warmup} list requests")
        send = first_page_sender(user_id, target.auth.headers(user_id))
        run_load(target, send, 1, plan.stack_warmup, 0)


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


def run(target: Target, plan: Plan, run_id: str, owner: str) -> ListingOutcome:
    """Seed the small table, warm up, measure; grow it to the large size, measure again."""
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
    return ListingOutcome([small_result, large_result], [small_walk, large_walk])
