"""A ~200 MiB upload through the service's part URLs beside boto3's `upload_file`, on SeaweedFS.

The file is a real PNG: 16-bit RGBA noise in stored (level 0) deflate blocks, 5120 x 5120
(26 MP, under the service's 50 MP cap) for 200 MiB, made in memory and written to a scratch
file for boto3 (untimed). Through the service, as Uppy's `@uppy/aws-s3` does it:
`POST /s3/multipart`, then per part `GET /s3/multipart/{uploadId}/{n}` (the presigned URL) and
the PUT of the part's bytes to SeaweedFS (its ETag kept), N parts in flight on threads sharing
one httpx keep-alive pool; that is the upload, timed. `POST /s3/multipart/{uploadId}/complete`
(S3 assembles the parts, the service copies and verifies the image) is timed apart. The
baseline is `boto3` `upload_file` of the same file to the same bucket (another key) with the
service's part size and `max_concurrency` N. Both are deleted afterwards (untimed). The goal:
the part URLs' MiB/s within 10% of boto3's at each concurrency.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import statistics
import struct
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import httpx
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from bench.harness import BUCKET, REGION, Stores, Target, http_client, progress
from bench.load import CLOCK_TICKS, cpu_ticks
from bench.plan import Plan
from bench.steps import FlowFailed, best_effort_delete, expect, is_loopback, sha256_hex, step

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GOAL = 0.90  # the issue: part URLs within 10% of boto3's upload_file
MIB = 1024 * 1024
PIXEL_BYTES = 8  # 16-bit RGBA
IDAT_BYTES = 4 * MIB  # deflate input per IDAT chunk
PART_TIMEOUT_S = 120.0  # one part's PUT, one sign request
COMPLETE_TIMEOUT_S = 900.0  # assembly, copy and verification of the whole image
WARMUP_BYTES = MIB  # the untimed warm-up's single part (the last part may be small)
SERVICE = "part URLs"
BOTO3 = "boto3 upload_file"


# ------------------------------------------------------------------------------------ PNG


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """Length, type, data, CRC of both."""
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_side(mib: int) -> int:
    """The side of a square 16-bit RGBA image of about `mib` MiB."""
    return int((mib * MIB / PIXEL_BYTES) ** 0.5)


def noise_png(side: int, seed: int = 0) -> bytes:
    """A square 16-bit RGBA PNG of seeded noise, deflate level 0: its size is its pixels'."""
    stride = side * PIXEL_BYTES + 1  # a filter byte (0: none) before each row
    raw = bytearray(random.Random(seed).randbytes(stride * side))
    raw[0::stride] = bytes(side)
    png = bytearray(b"\x89PNG\r\n\x1a\n")
    png += png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0))
    deflate, view = zlib.compressobj(0), memoryview(raw)
    for start in range(0, len(raw), IDAT_BYTES):
        if data := deflate.compress(view[start : start + IDAT_BYTES]):
            png += png_chunk(b"IDAT", data)
    png += png_chunk(b"IDAT", deflate.flush())
    png += png_chunk(b"IEND", b"")
    return bytes(png)


# -------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Upload:
    """One timed upload of the file by one uploader."""

    uploader: str  # SERVICE or BOTO3
    concurrency: int
    round: int
    upload_s: float | None  # None: failed. Service: create, signs and PUTs; boto3: upload_file
    complete_s: float | None = None  # service: POST .../complete (assembly, copy, verification)
    client_cpu_s: float | None = None  # this process, every thread, during the upload
    service_cpu_s: float | None = None  # the service process during the upload
    complete_cpu_s: float | None = None  # the service process during the complete
    error: str | None = None


@dataclass(frozen=True)
class Row:
    """One concurrency: the medians of the rounds."""

    concurrency: int
    service_mib_s: float | None  # upload phase
    boto3_mib_s: float | None
    complete_s: float | None
    end_to_end_mib_s: float | None  # service: create to verified
    service_cpu_s: float | None
    complete_cpu_s: float | None
    client_cpu_service_s: float | None
    client_cpu_boto3_s: float | None
    failed: int

    @property
    def ratio(self) -> float | None:
        """Part URLs' MiB/s over boto3's."""
        if self.service_mib_s is None or not self.boto3_mib_s:
            return None
        return self.service_mib_s / self.boto3_mib_s


@dataclass(frozen=True)
class MultipartOutcome:
    """Every upload, or why the scenario did not run."""

    size_bytes: int
    side: int
    part_bytes: int | None = None  # the service's suggestion (`part_size`), used by both
    concurrencies: tuple[int, ...] = ()
    rounds: int = 0
    uploads: tuple[Upload, ...] = ()
    skipped: str | None = None

    @property
    def parts(self) -> int:
        """Parts per upload."""
        if not self.part_bytes:
            return 0
        return -(-self.size_bytes // self.part_bytes)

    @property
    def failed(self) -> bool:
        """An upload, a complete or the scenario's preparation failed."""
        if self.skipped is not None:
            return False
        return self.part_bytes is None or any(u.error is not None for u in self.uploads)

    def rows(self) -> list[Row]:
        """The table: per concurrency, the medians of the rounds that succeeded."""
        return [self.row(c) for c in self.concurrencies]

    def row(self, concurrency: int) -> Row:
        """The medians of one concurrency."""
        mine = [u for u in self.uploads if u.concurrency == concurrency]
        ours = [u for u in mine if u.uploader == SERVICE and u.error is None]
        theirs = [u for u in mine if u.uploader == BOTO3 and u.error is None]
        mib = self.size_bytes / MIB

        def median(values: list[float | None]) -> float | None:
            known = [v for v in values if v is not None]
            return statistics.median(known) if known else None

        def rate(seconds: float | None) -> float | None:
            return None if not seconds else mib / seconds

        totals = [
            (u.upload_s or 0) + (u.complete_s or 0)
            for u in ours
            if u.upload_s is not None and u.complete_s is not None
        ]
        return Row(
            concurrency=concurrency,
            service_mib_s=median([rate(u.upload_s) for u in ours]),
            boto3_mib_s=median([rate(u.upload_s) for u in theirs]),
            complete_s=median([u.complete_s for u in ours]),
            end_to_end_mib_s=median([rate(total) for total in totals]),
            service_cpu_s=median([u.service_cpu_s for u in ours]),
            complete_cpu_s=median([u.complete_cpu_s for u in ours]),
            client_cpu_service_s=median([u.client_cpu_s for u in ours]),
            client_cpu_boto3_s=median([u.client_cpu_s for u in theirs]),
            failed=sum(1 for u in mine if u.error is not None),
        )


def cpu_seconds(before: int | None, after: int | None) -> float | None:
    """The difference of two cpu_ticks readings in seconds (None when the pid is unknown)."""
    if before is None or after is None:
        return None
    return (after - before) / CLOCK_TICKS


# ----------------------------------------------------------------------- through the service


@dataclass(frozen=True)
class Started:
    """A multipart upload the service started."""

    upload_id: str
    key: str
    image_id: str
    part_bytes: int


def start(
    client: httpx.Client, user_id: str, size: int, filename: str, auth: dict[str, str]
) -> Started:
    """POST /s3/multipart: Companion's body, the user and the size in `metadata`."""
    body = {
        "filename": filename,
        "type": "image/png",
        "metadata": {"user_id": user_id, "size": str(size)},
    }
    with step("create"):
        made = expect(client.post("/s3/multipart", json=body, headers=auth), 200, "create").json()
        return Started(
            str(made["uploadId"]), str(made["key"]), str(made["image_id"]), int(made["part_size"])
        )


def send_part(
    client: httpx.Client,
    started: Started,
    data: bytes,
    auth: dict[str, str],
    part: tuple[int, int, int],
) -> tuple[int, str]:
    """Sign one part (`GET /s3/multipart/{uploadId}/{n}`), PUT its bytes: (number, ETag)."""
    number, offset, length = part
    with step("sign"):
        path = f"/s3/multipart/{started.upload_id}/{number}"
        signed = client.get(path, params={"key": started.key}, headers=auth)
        url = str(expect(signed, 200, "sign").json()["url"])
    if not is_loopback(url):
        raise FlowFailed("sign: part URL not on 127.0.0.1")
    with step("put part"):
        sent = client.put(url, content=data[offset : offset + length], timeout=PART_TIMEOUT_S)
        etag = expect(sent, 200, "put part").headers["ETag"]
    return number, str(etag)


def part_ranges(size: int, part_bytes: int) -> list[tuple[int, int, int]]:
    """(number, offset, length) of each part; the last one takes the rest."""
    return [
        (index + 1, offset, min(part_bytes, size - offset))
        for index, offset in enumerate(range(0, size, part_bytes))
    ]


def finish(
    client: httpx.Client, started: Started, etags: list[tuple[int, str]], auth: dict[str, str]
) -> None:
    """POST /s3/multipart/{uploadId}/complete: 200 and `status: ready`."""
    parts = [{"PartNumber": number, "ETag": etag} for number, etag in sorted(etags)]
    path = f"/s3/multipart/{started.upload_id}/complete"
    with step("complete"):
        done = client.post(
            path,
            params={"key": started.key},
            json={"parts": parts},
            headers=auth,
            timeout=COMPLETE_TIMEOUT_S,
        )
        answer = expect(done, 200, "complete").json()
        if answer["status"] != "ready" or answer["image_id"] != started.image_id:
            raise FlowFailed(f"complete: status {answer['status']}")


def check_stored(
    client: httpx.Client, image_id: str, size: int, digest: str, auth: dict[str, str]
) -> None:
    """GET /images/{id} (untimed): the service kept every byte, as sent."""
    with step("check"):
        image = expect(client.get(f"/images/{image_id}", headers=auth), 200, "check").json()
        if image["size"] != size or image["sha256"] != digest:
            raise FlowFailed("check: the stored image's size or sha256 differs from the file's")


def abort(client: httpx.Client, started: Started, auth: dict[str, str]) -> None:
    """DELETE /s3/multipart/{uploadId}: a failed upload leaves no parts (best effort)."""
    with suppress(httpx.HTTPError):
        path = f"/s3/multipart/{started.upload_id}"
        client.delete(path, params={"key": started.key}, headers=auth)


def through_service(
    client: httpx.Client,
    pool: ThreadPoolExecutor,
    target: Target,
    user_id: str,
    data: bytes,
    digest: str,
    concurrency: int,
    round_: int,
) -> Upload:
    """One upload through the part URLs, timed in two phases, then deleted (untimed)."""
    auth = target.auth.headers(user_id)
    started: Started | None = None
    before, clock = cpu_ticks(target.pid), time.process_time()
    begin = time.perf_counter()
    try:
        started = start(client, user_id, len(data), f"multipart-{round_}-{concurrency}.png", auth)
        send = partial(send_part, client, started, data, auth)
        etags = list(pool.map(send, part_ranges(len(data), started.part_bytes)))
        upload_s = time.perf_counter() - begin
        client_cpu_s = time.process_time() - clock
        middle = cpu_ticks(target.pid)
        begin = time.perf_counter()
        finish(client, started, etags, auth)
        complete_s = time.perf_counter() - begin
        after = cpu_ticks(target.pid)
        check_stored(client, started.image_id, len(data), digest, auth)
    except FlowFailed as exc:
        progress(f"multipart: {SERVICE}, {concurrency} in flight: {exc}")
        if started is not None:
            abort(client, started, auth)
            best_effort_delete(client, started.image_id, auth)
        return Upload(SERVICE, concurrency, round_, None, error=str(exc))
    best_effort_delete(client, started.image_id, auth)
    return Upload(
        SERVICE,
        concurrency,
        round_,
        upload_s,
        complete_s,
        client_cpu_s,
        cpu_seconds(before, middle),
        cpu_seconds(middle, after),
    )


def warm_up(
    client: httpx.Client, pool: ThreadPoolExecutor, target: Target, user_id: str, workers: int
) -> int:
    """Untimed: one small part per thread, then abort; the service's part size."""
    auth = target.auth.headers(user_id)
    started = start(client, user_id, workers * WARMUP_BYTES, "multipart-warmup.png", auth)
    try:
        data = bytes(workers * WARMUP_BYTES)
        send = partial(send_part, client, started, data, auth)
        list(pool.map(send, part_ranges(len(data), WARMUP_BYTES)))
    finally:
        abort(client, started, auth)
    return started.part_bytes


# ---------------------------------------------------------------------------------- boto3


def s3_client(stores: Stores, connections: int) -> S3Client:
    """boto3 on the same SeaweedFS, as the service addresses it (path style, SigV4)."""
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        max_pool_connections=connections,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    client: S3Client = boto3.client(
        "s3",
        endpoint_url=stores.s3.endpoint_url,
        region_name=REGION,
        aws_access_key_id=stores.s3.access_key,
        aws_secret_access_key=stores.s3.secret_key,
        config=config,
    )
    return client


def with_boto3(
    s3: S3Client, path: Path, key: str, part_bytes: int, concurrency: int, round_: int
) -> Upload:
    """`upload_file` of the same PNG with the service's part size, then deleted (untimed)."""
    transfer = TransferConfig(
        multipart_threshold=part_bytes,
        multipart_chunksize=part_bytes,
        max_concurrency=concurrency,
        use_threads=True,
    )
    clock = time.process_time()
    begin = time.perf_counter()
    try:
        s3.upload_file(
            str(path), BUCKET, key, ExtraArgs={"ContentType": "image/png"}, Config=transfer
        )
    except Exception as exc:  # boto3's transfer manager raises several kinds
        progress(f"multipart: {BOTO3}, {concurrency} in flight: {exc}")
        return Upload(BOTO3, concurrency, round_, None, error=f"upload_file: {type(exc).__name__}")
    finally:
        with suppress(Exception):
            s3.delete_object(Bucket=BUCKET, Key=key)
    upload_s = time.perf_counter() - begin
    return Upload(BOTO3, concurrency, round_, upload_s, client_cpu_s=time.process_time() - clock)


# ------------------------------------------------------------------------------------ run


def run(target: Target, plan: Plan, run_id: str) -> MultipartOutcome:
    """The PNG, a warm-up, then per round and concurrency both uploaders (order alternating)."""
    side = png_side(plan.multipart_mib)
    size = PIXEL_BYTES * side * side + side  # the pixels' bytes, without the PNG's framing
    if target.stores is None:
        reason = "--url: the boto3 baseline needs the SeaweedFS this benchmark starts"
        progress(f"multipart: skipped ({reason})")
        return MultipartOutcome(size, side, skipped=reason)
    user_id = f"bench-{run_id}-multipart"
    concurrencies = plan.multipart_concurrency
    workers = max(concurrencies)
    scratch = Path(tempfile.mkdtemp(prefix="cis-bench-multipart-"))
    try:
        progress(f"multipart: making a {side} x {side} 16-bit RGBA PNG of noise (untimed)")
        data = noise_png(side)
        path = scratch / "noise.png"
        path.write_bytes(data)
        digest, size = sha256_hex(data), len(data)
        uploads: list[Upload] = []
        s3 = s3_client(target.stores, workers + 2)
        with http_client(target.base_url, 2 * workers, PART_TIMEOUT_S) as client:
            try:
                with ThreadPoolExecutor(workers) as pool:
                    part_bytes = warm_up(client, pool, target, user_id, workers)
            except FlowFailed as exc:
                progress(f"multipart: warm-up failed: {exc}")
                return MultipartOutcome(size, side, None, concurrencies, plan.multipart_rounds)
            warm = f"bench-multipart/{run_id}-warmup"
            s3.put_object(Bucket=BUCKET, Key=warm, Body=b"warm")
            s3.delete_object(Bucket=BUCKET, Key=warm)
            for round_ in range(1, plan.multipart_rounds + 1):
                for index, concurrency in enumerate(concurrencies):
                    progress(
                        f"multipart: round {round_}/{plan.multipart_rounds}, "
                        f"{size / MIB:.0f} MiB, {concurrency} parts in flight"
                    )
                    key = f"bench-multipart/{run_id}-{round_}-{concurrency}.png"
                    with ThreadPoolExecutor(concurrency) as pool:
                        mine = partial(through_service, client, pool, target, user_id, data, digest)
                        theirs = partial(with_boto3, s3, path, key, part_bytes)
                        # Alternating which goes first: a load that drifts hits both alike.
                        if (round_ + index) % 2:
                            uploads.append(mine(concurrency, round_))
                            uploads.append(theirs(concurrency, round_))
                        else:
                            uploads.append(theirs(concurrency, round_))
                            uploads.append(mine(concurrency, round_))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return MultipartOutcome(
        size, side, part_bytes, concurrencies, plan.multipart_rounds, tuple(uploads)
    )


# --------------------------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for the table; '-' when not measured."""
    return "-" if value is None else f"{value:,.{digits}f}"


def report_lines(outcome: MultipartOutcome) -> list[str]:
    """The scenario's block of the report."""
    if outcome.skipped is not None:
        return [f"Multipart upload: not run ({outcome.skipped})"]
    if outcome.part_bytes is None:
        return ["Multipart upload: not run (the warm-up upload failed; see the progress output)"]
    rounds = f"median of {outcome.rounds} rounds" if outcome.rounds > 1 else "one round"
    lines = [
        f"Multipart upload of a {outcome.size_bytes / MIB:.1f} MiB PNG "
        f"({outcome.size_bytes:,} bytes; {outcome.side} x {outcome.side} 16-bit RGBA noise) to "
        f"SeaweedFS (S3) + DynamoDB Local, {outcome.parts} parts of the service's part_size "
        f"{outcome.part_bytes / MIB:g} MiB; {rounds}. Part URLs: `POST /s3/multipart`, per "
        "part `GET /s3/multipart/{uploadId}/{n}` and the PUT to S3 (upload, timed), then "
        "`POST .../complete` (S3 assembles, the service copies and verifies; timed apart). "
        "boto3: `upload_file` with the same part size and `max_concurrency` = parts in flight:",
        "",
        f"| Parts in flight | {SERVICE} MiB/s | {BOTO3} MiB/s | Ratio | Complete s "
        "| Create to verified MiB/s | Service CPU s upload / complete "
        "| Client CPU s part URLs / boto3 | Failed |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in outcome.rows():
        ratio = "-" if row.ratio is None else f"{row.ratio:.0%}"
        lines.append(
            f"| {row.concurrency} | {fmt(row.service_mib_s)} | {fmt(row.boto3_mib_s)} | {ratio} "
            f"| {fmt(row.complete_s, 2)} | {fmt(row.end_to_end_mib_s)} "
            f"| {fmt(row.service_cpu_s, 2)} / {fmt(row.complete_cpu_s, 2)} "
            f"| {fmt(row.client_cpu_service_s, 2)} / {fmt(row.client_cpu_boto3_s, 2)} "
            f"| {row.failed} |"
        )
    errors = [f"{u.uploader} at {u.concurrency}: `{u.error}`" for u in outcome.uploads if u.error]
    if errors:
        lines += ["", f"Failed: {'; '.join(errors)}"]
    return lines


def target_row(outcome: MultipartOutcome) -> tuple[str, str, str, bool | None]:
    """The issue's goal: name, goal, measured, met (None: not measured)."""
    name = f"Part URLs MiB/s vs boto3 `upload_file` ({outcome.size_bytes / MIB:.0f} MiB, SeaweedFS)"
    goal = f">= {GOAL:.0%} of boto3 at each concurrency (within 10%)"
    ratios = [(row.ratio, row) for row in outcome.rows() if row.ratio is not None]
    if outcome.skipped is not None or not ratios or len(ratios) < len(outcome.concurrencies):
        return name, goal, f"n/a ({outcome.skipped or 'an upload failed'})", None
    parts = [
        f"{row.concurrency}: {ratio:.0%} ({row.service_mib_s:.1f} vs {row.boto3_mib_s:.1f})"
        for ratio, row in ratios
    ]
    return name, goal, "; ".join(parts), all(ratio >= GOAL for ratio, _ in ratios)


def as_json(outcome: MultipartOutcome) -> dict[str, Any]:
    """The outcome with its table (the medians) beside the uploads."""
    rows = [dataclasses.asdict(row) | {"ratio": row.ratio} for row in outcome.rows()]
    return dataclasses.asdict(outcome) | {"parts": outcome.parts, "rows": rows}
