"""Eight concurrent decodes of near-cap images stay within the process's memory budget.

The service runs in a process of its own so that its peak resident memory (VmHWM)
is its own: a 7000 x 7000 RGBA PNG of a few hundred KB decodes to 196 MB.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.images import complete, presign, put_bytes
from tests.processes import start_serve

BUDGET_MB = 256
SIDE = 7000  # 49 megapixels, under the 50-megapixel cap
DECODED_MB = SIDE * SIDE * 4 / 2**20  # 187 MiB


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def service_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    serve = start_serve(
        tmp_path_factory.mktemp("budget"),
        CIS_VERIFY_MEMORY_MB=str(BUDGET_MB),
        CIS_VERIFY_WAIT_SECONDS="60",
        CIS_LOG_LEVEL="warning",
    )
    yield serve.url, serve.pid
    serve.stop(15)


def _big_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (SIDE, SIDE), (200, 120, 40, 255)).save(buffer, "PNG")
    return buffer.getvalue()


def test_eight_concurrent_near_cap_decodes_share_the_budget(
    service_process: tuple[str, int],
) -> None:
    url, pid = service_process
    data = _big_png()
    assert len(data) < 1024 * 1024  # a few hundred KB uploaded...
    with httpx.Client(base_url=url, timeout=120) as api:
        warm = presign(api, "budget-user")
        put_bytes(warm, _small_png())
        api.post(f"/images/{warm['image_id']}/complete")
        baseline = _peak_rss_mb(pid)
        uploads = [presign(api, "budget-user") for _ in range(8)]
        for upload in uploads:
            assert put_bytes(upload, data).status_code == 200
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda u: complete(api, u["image_id"]), uploads))
    assert [a.json().get("status") for a in answers] == ["ready"] * 8, [a.text for a in answers]
    grown = _peak_rss_mb(pid) - baseline
    # ...that decode to 8 x 187 MiB = 1.5 GiB without a budget; with it, one at a time.
    assert grown < BUDGET_MB + 128, f"peak RSS grew by {grown:.0f} MB"
    assert grown > DECODED_MB * 0.5  # the decodes really happened in this process


def _small_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "orange").save(buffer, "PNG")
    return buffer.getvalue()
