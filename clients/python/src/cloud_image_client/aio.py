"""`AsyncClient`: the asyncio twin of `Client`, method for method."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from cloud_image_client import _common
from cloud_image_client._common import UploadPlan
from cloud_image_client._core import (
    DEFAULT_MULTIPART_THRESHOLD,
    URL_LIFETIME_S,
    VERIFY_AGAIN,
    WAIT_FOR_VARIANT,
    Part,
    ProgressCallback,
    ProgressTracker,
    RetryPolicy,
    download_target,
    held_parts,
    layout,
    retryable,
    sign_window,
    storage_retryable,
    transport_retry,
)
from cloud_image_client._source import CHUNK_BYTES, PathOrBytes, Source
from cloud_image_client.errors import (
    ApiError,
    NotFound,
    PayloadTooLarge,
    ServerError,
    ServiceUnreachable,
    StorageError,
    describe_transport_error,
    error_from_response,
    storage_error,
)
from cloud_image_client.models import Image, Page
from cloud_image_client.resume import ResumeStore, UploadState

# An async request body: its chunks, its length, and how many bytes of it went out so far.
AsyncBody = tuple[AsyncIterator[bytes], int, Callable[[], int]]


class _Count:
    def __init__(self) -> None:
        self.sent = 0


class AsyncClient:
    """The asyncio client: the same methods as `Client`, to be awaited (`images` is an async
    iterator). Multipart parts are sent as concurrent tasks; cancelling `upload` keeps a
    multipart upload resumable, like any other interruption.

    >>> async with AsyncClient("http://127.0.0.1:8000", token="eyJ...") as client:
    ...     image = await client.upload("cat.png")
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 5,
        max_retry_delay: float = 20.0,
        part_concurrency: int = 4,
        state_dir: str | os.PathLike[str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = _common.normalize_url(base_url)
        self._headers = _common.auth_headers(token, api_key)
        self._policy = RetryPolicy(retries=max(0, retries), max_delay=max_retry_delay)
        self._part_concurrency = max(1, part_concurrency)
        self.resume_store = ResumeStore(state_dir)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (unless the httpx client was given)."""
        if self._owns_http:
            await self._http.aclose()

    # ------------------------------------------------------------------------------ requests

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
        also_retry: frozenset[str] = frozenset(),
        image_id: str | None = None,
    ) -> httpx.Response:
        url = f"{self.base_url}{path}"
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    method, url, params=params, json=json, headers=self._headers
                )
            except httpx.TransportError as exc:
                if transport_retry(self._policy, attempt, exc, idempotent):
                    await asyncio.sleep(self._policy.delay(attempt))
                    attempt += 1
                    continue
                raise ServiceUnreachable(self.base_url, describe_transport_error(exc)) from exc
            if response.is_success:
                return response
            error = error_from_response(response, image_id)
            again = retryable(error, also_retry) or (idempotent and isinstance(error, ServerError))
            if attempt < self._policy.retries and again:
                await asyncio.sleep(self._policy.delay(attempt, error.retry_after))
                attempt += 1
                continue
            raise error

    async def _storage(
        self,
        method: str,
        url: str,
        body: Callable[[], AsyncBody],
        what: str,
        tracker: ProgressTracker,
        content_type: str | None = None,
    ) -> httpx.Response:
        attempt = 0
        while True:
            content, length, sent = body()
            try:
                response = await self._http.request(
                    method, url, content=content, headers=_common.body_headers(length, content_type)
                )
            except httpx.TransportError as exc:
                tracker.add(-sent())
                if transport_retry(self._policy, attempt, exc, True):
                    await asyncio.sleep(self._policy.delay(attempt))
                    attempt += 1
                    continue
                raise ServiceUnreachable(
                    _common.origin(url), describe_transport_error(exc)
                ) from exc
            if response.is_success:
                return response
            tracker.add(-sent())
            error = storage_error(response, what)
            if attempt < self._policy.retries and storage_retryable(error):
                await asyncio.sleep(self._policy.delay(attempt, error.retry_after))
                attempt += 1
                continue
            raise error

    # ------------------------------------------------------------------------------ reading

    async def get(self, image_id: str) -> Image:
        """One image's record (NotFound for an unknown, another user's or a trashed one)."""
        response = await self._request("GET", f"/images/{quote(image_id, safe='')}")
        return Image.from_json(response.json())

    async def list_page(
        self,
        user_id: str | None = None,
        tag: str | None = None,
        status: str | None = None,
        *,
        limit: int = 50,
        cursor: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Page:
        """One page of `GET /images`; pass its `next_cursor` as `cursor` for the next one."""
        params = _common.list_params(
            user_id, tag, status, limit, cursor, created_after, created_before
        )
        return Page.from_json((await self._request("GET", "/images", params=params)).json())

    async def images(
        self,
        user_id: str | None = None,
        tag: str | None = None,
        status: str | None = None,
        *,
        page_size: int = 50,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> AsyncIterator[Image]:
        """Every matching image, page by page, following `next_cursor`."""
        cursor: str | None = None
        while True:
            page = await self.list_page(
                user_id,
                tag,
                status,
                limit=page_size,
                cursor=cursor,
                created_after=created_after,
                created_before=created_before,
            )
            for image in page.items:
                yield image
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def find_by_sha256(self, sha256: str, user_id: str | None = None) -> list[Image]:
        """The user's ready images with exactly these bytes (hex SHA-256 of the file)."""
        params = _common.sha256_params(sha256, user_id)
        return Page.from_json((await self._request("GET", "/images", params=params)).json()).items

    async def download_url(
        self, image_id: str, variant: str | None = None, disposition: str = "attachment"
    ) -> str:
        """A presigned URL of the original or of a variant (waits while a variant is made)."""
        params = _common.download_params(variant, disposition)
        path = f"/images/{quote(image_id, safe='')}/download"
        response = await self._request(
            "GET", path, params=params, also_retry=WAIT_FOR_VARIANT, image_id=image_id
        )
        return str(response.json()["download_url"])

    async def download(
        self,
        image_id: str,
        dest: str | os.PathLike[str],
        variant: str | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Save the original (or a variant) to `dest` (a file, or a directory, one that exists
        or a path ending with `/`, then made: the service's file name); returns the path
        written."""
        url = await self.download_url(image_id, variant)
        attempt = 0
        while True:
            try:
                return await self._fetch(url, dest, image_id, progress)
            except httpx.TransportError as exc:
                if not transport_retry(self._policy, attempt, exc, True):
                    reason = describe_transport_error(exc)
                    raise ServiceUnreachable(_common.origin(url), reason) from exc
            except StorageError as error:
                if attempt >= self._policy.retries or not storage_retryable(error):
                    raise
            await asyncio.sleep(self._policy.delay(attempt))
            attempt += 1

    async def _fetch(
        self,
        url: str,
        dest: str | os.PathLike[str],
        image_id: str,
        progress: ProgressCallback | None,
    ) -> Path:
        async with self._http.stream("GET", url) as response:
            if response.status_code != 200:
                await response.aread()
                raise storage_error(response, "download")
            disposition = response.headers.get("content-disposition")
            target = download_target(dest, disposition, image_id)
            tracker = ProgressTracker(int(response.headers.get("content-length") or 0), progress)
            partial = target.with_name(f".{target.name}.part")
            try:
                with partial.open("wb") as out:
                    async for chunk in response.aiter_bytes(CHUNK_BYTES):
                        await asyncio.to_thread(out.write, chunk)
                        tracker.add(len(chunk))
                partial.replace(target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
        return target

    # ------------------------------------------------------------------------------ writing

    async def delete(self, image_id: str, *, permanent: bool = False) -> None:
        """Delete an image (to the trash where the service keeps one, unless `permanent`)."""
        params = {"permanent": "true"} if permanent else None
        await self._request("DELETE", f"/images/{quote(image_id, safe='')}", params=params)

    async def complete(self, image_id: str) -> Image:
        """Have the service verify an uploaded image now: the ready image, or ImageRejected."""
        path = f"/images/{quote(image_id, safe='')}/complete"
        return Image.from_json(
            (await self._request("POST", path, image_id=image_id, also_retry=VERIFY_AGAIN)).json()
        )

    async def upload(
        self,
        source: PathOrBytes,
        *,
        content_type: str | None = None,
        tags: Iterable[str] = (),
        description: str | None = None,
        progress: ProgressCallback | None = None,
        skip_duplicates: bool = False,
        user_id: str | None = None,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        filename: str | None = None,
    ) -> Image:
        """Upload a file or bytes and return the ready image: see `Client.upload`."""
        with Source(source, filename) as src:
            plan = UploadPlan.make(src, content_type, tags, description, user_id)
            if skip_duplicates:
                found = await self.find_by_sha256(await asyncio.to_thread(src.sha256), user_id)
                if found:
                    return found[0]
            tracker = ProgressTracker(src.size, progress)
            if src.size <= multipart_threshold:
                try:
                    return await self._form_upload(src, plan, tracker)
                except PayloadTooLarge:
                    pass  # above the form's limit: multipart may take it
            return await self._multipart(src, plan, tracker)

    async def _form_upload(self, src: Source, plan: UploadPlan, tracker: ProgressTracker) -> Image:
        body = plan.meta.upload_body()
        started = (
            await self._request("POST", "/images/upload", json=body, idempotent=False)
        ).json()
        image_id = str(started["image_id"])
        form = _common.form_body(started, src, plan)

        def stream() -> AsyncBody:
            count = _Count()

            async def chunks() -> AsyncIterator[bytes]:
                yield form.body.head
                offset = 0
                while offset < src.size:
                    chunk = await asyncio.to_thread(src.read, offset, CHUNK_BYTES)
                    if not chunk:
                        raise OSError(f"{src.name}: file shrank while it was read")
                    yield chunk
                    offset += len(chunk)
                    count.sent += len(chunk)
                    tracker.add(len(chunk))
                yield form.body.tail

            return chunks(), form.body.length(src.size), lambda: count.sent

        try:
            await self._storage("POST", form.url, stream, "upload", tracker, form.body.content_type)
        except Exception:
            with contextlib.suppress(ApiError, ServiceUnreachable):
                await self.delete(image_id)
            raise
        return await self.complete(image_id)

    async def _multipart(self, src: Source, plan: UploadPlan, tracker: ProgressTracker) -> Image:
        key = plan.resume_key(self.base_url, src)
        state = self.resume_store.load(key)
        held: dict[int, str] = {}
        if state is not None and _common.state_matches(state, self.base_url, src):
            try:
                held = held_parts(await self._list_parts(state), layout(src.size, state.part_size))
            except NotFound:
                self.resume_store.discard(key)
                done = await self._finished(state, src)
                if done is not None:
                    return done
                state = None
        else:
            state = None
        if state is None:
            body = plan.meta.multipart_body()
            started = await self._request("POST", "/s3/multipart", json=body, idempotent=False)
            state = _common.new_state(self.base_url, src, plan, started.json())
            self.resume_store.save(key, state)
        parts = layout(src.size, state.part_size)
        tracker.add(sum(part.length for part in parts if part.number in held))
        missing = [part for part in parts if part.number not in held]
        held.update(await self._send_parts(state, src, missing, tracker))
        return await self._complete_multipart(state, held, key)

    async def _list_parts(self, state: UploadState) -> list[dict[str, Any]]:
        path = f"/s3/multipart/{quote(state.upload_id, safe='')}"
        listing: list[dict[str, Any]] = (
            await self._request("GET", path, params={"key": state.key})
        ).json()
        return listing

    async def _finished(self, state: UploadState, src: Source) -> Image | None:
        try:
            image = await self.get(state.image_id)
        except NotFound:
            return None
        return image if image.ready and image.size == src.size else None

    async def _complete_multipart(
        self, state: UploadState, held: dict[int, str], key: str
    ) -> Image:
        path = f"/s3/multipart/{quote(state.upload_id, safe='')}/complete"
        body = _common.complete_body(held)
        try:
            await self._request(
                "POST",
                path,
                params={"key": state.key},
                json=body,
                image_id=state.image_id,
                also_retry=VERIFY_AGAIN,
            )
        except NotFound:
            self.resume_store.discard(key)
            return await self.complete(state.image_id)
        except ApiError as error:
            if _common.upload_is_over(error):
                self.resume_store.discard(key)
            raise
        self.resume_store.discard(key)
        return await self.get(state.image_id)

    async def _send_parts(
        self, state: UploadState, src: Source, missing: list[Part], tracker: ProgressTracker
    ) -> dict[int, str]:
        """PUT the parts as tasks, `part_concurrency` at a time; a failure cancels the rest."""
        signer = _AsyncPartSigner(self, state, [part.number for part in missing])
        slots = asyncio.Semaphore(self._part_concurrency)

        async def one(part: Part) -> tuple[int, str]:
            async with slots:
                return part.number, await self._put_part(signer, src, part, tracker)

        tasks = [asyncio.create_task(one(part)) for part in missing]
        etags: dict[int, str] = {}
        try:
            for next_done in asyncio.as_completed(tasks):
                number, value = await next_done
                etags[number] = value
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return etags

    async def _put_part(
        self, signer: _AsyncPartSigner, src: Source, part: Part, tracker: ProgressTracker
    ) -> str:
        data = await asyncio.to_thread(src.read, part.offset, part.length)

        def stream() -> AsyncBody:
            count = _Count()

            async def chunks() -> AsyncIterator[bytes]:
                for offset in range(0, len(data), CHUNK_BYTES):
                    chunk = data[offset : offset + CHUNK_BYTES]
                    yield chunk
                    count.sent += len(chunk)
                    tracker.add(len(chunk))

            return chunks(), len(data), lambda: count.sent

        refresh = False
        attempt = 0
        while True:
            url = await signer.url(part.number, refresh=refresh)
            try:
                response = await self._storage("PUT", url, stream, f"part {part.number}", tracker)
            except ApiError as error:
                if error.status != 403 or refresh or attempt >= self._policy.retries:
                    raise
                refresh = True  # the signed URL expired: sign it again, once
                attempt += 1
                continue
            return _common.etag(response, part.number)


class _AsyncPartSigner:
    """Presigned part URLs, signed in batches just before they are needed."""

    def __init__(self, client: AsyncClient, state: UploadState, missing: list[int]) -> None:
        self._client = client
        self._state = state
        self._missing = missing
        self._urls: dict[int, tuple[str, float]] = {}
        self._lock = asyncio.Lock()

    async def url(self, number: int, refresh: bool = False) -> str:
        """The URL of part `number` (signed anew when asked, or when it is old)."""
        async with self._lock:
            now = time.monotonic()
            cached = self._urls.get(number)
            if cached is not None and not refresh and now - cached[1] < URL_LIFETIME_S:
                return cached[0]
            fresh = [n for n, (_, at) in self._urls.items() if now - at < URL_LIFETIME_S]
            window = sign_window(number, self._missing, [n for n in fresh if n != number])
            path = f"/s3/multipart/{quote(self._state.upload_id, safe='')}/batch"
            params = {"key": self._state.key, "partNumbers": ",".join(map(str, window))}
            response = await self._client._request("GET", path, params=params)
            signed = response.json()["presignedUrls"]
            for name, url in signed.items():
                self._urls[int(name)] = (str(url), now)
            return self._urls[number][0]
