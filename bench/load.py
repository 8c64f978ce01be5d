"""The timed load runner: requests over threads, the service's CPU time from /proc and the
summary of a run (`Result`: requests/s, latency percentiles, CPU per request)."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from bench.harness import Target, http_client

# One HTTP request of a scenario: True when the service answered as expected.
Send = Callable[[httpx.Client, int], bool]

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
        list(pool.map(partial(timed, client, send), range(warmup_count(warmup, concurrency))))
        cpu_before = cpu_ticks(target.pid)
        start = time.perf_counter()
        timings = list(pool.map(partial(timed, client, send), range(count)))
        wall_s = time.perf_counter() - start
        cpu_after = cpu_ticks(target.pid)
    ticks = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return timings, wall_s, ticks


def warmup_count(warmup: int, concurrency: int) -> int:
    """Untimed calls `run_load` makes first: at least one per thread."""
    return max(warmup, concurrency)
