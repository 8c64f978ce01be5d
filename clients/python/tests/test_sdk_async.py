"""AsyncClient: the same flow as the blocking client, awaited."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from cloud_image_client import AsyncClient, ImageRejected, NotFound
from conftest import VARIANTS_TIMEOUT_S, Service, png_bytes

MiB = 1024 * 1024


def test_async_flow(service: Service, user: str, tmp_path: Path) -> None:
    small = png_bytes(200, seed=40)
    large = png_bytes(1900, seed=41, compress_level=0)  # about 10 MiB: two 8 MiB parts

    async def flow() -> None:
        async with AsyncClient(service.url, state_dir=tmp_path / "state") as client:
            first = await client.upload(small, user_id=user, tags=["async"], filename="a.png")
            assert first.status == "ready"
            assert first.sha256 == hashlib.sha256(small).hexdigest()
            sent: list[int] = []
            second = await client.upload(
                large,
                user_id=user,
                multipart_threshold=4 * MiB,
                progress=lambda done, total: sent.append(done),
            )
            assert second.size == len(large)
            assert sent[-1] == len(large)
            again = await client.upload(small, user_id=user, skip_duplicates=True)
            assert again.image_id == first.image_id
            assert (await client.get(first.image_id)).tags == ("async",)
            listed = [image.image_id async for image in client.images(user_id=user, page_size=1)]
            assert listed == [second.image_id, first.image_id]
            saved = await client.download(first.image_id, tmp_path)
            assert saved == tmp_path / "a.png"
            assert saved.read_bytes() == small
            deadline = asyncio.get_running_loop().time() + VARIANTS_TIMEOUT_S
            while not (await client.get(first.image_id)).variants:
                assert asyncio.get_running_loop().time() < deadline, "no variants made"
                await asyncio.sleep(0.25)
            thumb = await client.download(first.image_id, tmp_path / "t.webp", variant="thumb")
            assert thumb.read_bytes()[:4] == b"RIFF"
            made = await client.download(first.image_id, f"{tmp_path}/thumbs/", variant="thumb")
            assert made == tmp_path / "thumbs" / "a-thumb.webp"
            with pytest.raises(ImageRejected):
                await client.upload(b"text", user_id=user, content_type="image/gif")
            await client.delete(first.image_id)
            with pytest.raises(NotFound):
                await client.get(first.image_id)

    asyncio.run(flow())
