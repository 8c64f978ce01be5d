"""`Client`: the blocking SDK (httpx), uploads with parallel, resumable multipart parts."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from cloud_image_client import _common
from cloud_image_client._common import Stopped, UploadPlan
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


class Client:
    """A blocking client of the Cloud Image Service.

    >>> with Client("http://127.0.0.1:8000", token="eyJ...") as client:
    ...     image = client.upload("cat.png", tags=["cat"])
    ...     client.download(image.image_id, "thumbs/", variant="thumb")

    `token` is sent as `Authorization: Bearer`, `api_key` as `X-API-Key` (neither: a
    service without authentication, where `user_id` names the user). 429 and 503 answers
    (and 409 `verification_in_progress`) are retried `retries` times with exponential backoff
    and jitter, honouring `Retry-After`; `retries=0` raises at once. Multipart parts are sent
    `part_concurrency` at a time. Interrupted multipart uploads are remembered in `state_dir`
    (see `cloud_image_client.resume`). `http_client` replaces the httpx client (its
    timeouts, proxies and hooks); it is not closed by `close()`.
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
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url = _common.normalize_url(base_url)
        self._headers = _common.auth_headers(token, api_key)
        self._policy = RetryPolicy(retries=max(0, retries), max_delay=max_retry_delay)
        self._part_concurrency = max(1, part_concurrency)
        self.resume_store = ResumeStore(state_dir)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections (unless the httpx client was given)."""
        if self._owns_http:
            self._http.close()

    # ------------------------------------------------------------------------------ requests

    def _request(
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
        """One API call with the credential; retried as the policy says; typed errors."""
        url = f"{self.base_url}{path}"
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method, url, params=params, json=json, headers=self._headers
                )
            except httpx.TransportError as exc:
                if transport_retry(self._policy, attempt, exc, idempotent):
                    time.sleep(self._policy.delay(attempt))
                    attempt += 1
                    continue
                raise ServiceUnreachable(self.base_url, describe_transport_error(exc)) from exc
            if response.is_success:
                return response
            error = error_from_response(response, image_id)
            again = retryable(error, also_retry) or (idempotent and isinstance(error, ServerError))
            if attempt < self._policy.retries and again:
                time.sleep(self._policy.delay(attempt, error.retry_after))
                attempt += 1
                continue
            raise error

    def _storage(
        self,
        method: str,
        url: str,
        body: _common.BodyFactory,
        what: str,
        tracker: ProgressTracker,
        content_type: str | None = None,
    ) -> httpx.Response:
        """A presigned S3 request (no credential), retried on transport errors and 5xx."""
        attempt = 0
        while True:
            content, length, sent = body()
            try:
                response = self._http.request(
                    method, url, content=content, headers=_common.body_headers(length, content_type)
                )
            except httpx.TransportError as exc:
                tracker.add(-sent())
                if transport_retry(self._policy, attempt, exc, True):
                    time.sleep(self._policy.delay(attempt))
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
                time.sleep(self._policy.delay(attempt, error.retry_after))
                attempt += 1
                continue
            raise error

    # ------------------------------------------------------------------------------ reading

    def get(self, image_id: str) -> Image:
        """One image's record (NotFound for an unknown, another user's or a trashed one)."""
        return Image.from_json(self._request("GET", f"/images/{quote(image_id, safe='')}").json())

    def list_page(
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
        return Page.from_json(self._request("GET", "/images", params=params).json())

    def images(
        self,
        user_id: str | None = None,
        tag: str | None = None,
        status: str | None = None,
        *,
        page_size: int = 50,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Iterator[Image]:
        """Every matching image (ready ones unless `status` says otherwise), page by page,
        following `next_cursor`; newest first for one user."""
        cursor: str | None = None
        while True:
            page = self.list_page(
                user_id,
                tag,
                status,
                limit=page_size,
                cursor=cursor,
                created_after=created_after,
                created_before=created_before,
            )
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def find_by_sha256(self, sha256: str, user_id: str | None = None) -> list[Image]:
        """The user's ready images with exactly these bytes (hex SHA-256 of the file).

        With authentication on, `user_id` may be left out (the caller); without it, it is
        needed."""
        params = _common.sha256_params(sha256, user_id)
        return Page.from_json(self._request("GET", "/images", params=params).json()).items

    def download_url(
        self, image_id: str, variant: str | None = None, disposition: str = "attachment"
    ) -> str:
        """A presigned URL of the original or of a variant (waits while a variant is made)."""
        params = _common.download_params(variant, disposition)
        path = f"/images/{quote(image_id, safe='')}/download"
        response = self._request(
            "GET", path, params=params, also_retry=WAIT_FOR_VARIANT, image_id=image_id
        )
        return str(response.json()["download_url"])

    def download(
        self,
        image_id: str,
        dest: str | os.PathLike[str],
        variant: str | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Save the original (or a variant) to `dest`; a directory (one that exists, or a path
        ending with `/`, then made) gets the name the service gives (`cat.png`,
        `cat-thumb.webp`). Returns the path written (atomically)."""
        url = self.download_url(image_id, variant)
        attempt = 0
        while True:
            try:
                return self._fetch(url, dest, image_id, progress)
            except httpx.TransportError as exc:
                if not transport_retry(self._policy, attempt, exc, True):
                    reason = describe_transport_error(exc)
                    raise ServiceUnreachable(_common.origin(url), reason) from exc
            except StorageError as error:
                if attempt >= self._policy.retries or not storage_retryable(error):
                    raise
            time.sleep(self._policy.delay(attempt))
            attempt += 1

    def _fetch(
        self,
        url: str,
        dest: str | os.PathLike[str],
        image_id: str,
        progress: ProgressCallback | None,
    ) -> Path:
        with self._http.stream("GET", url) as response:
            if response.status_code != 200:
                response.read()
                raise storage_error(response, "download")
            disposition = response.headers.get("content-disposition")
            target = download_target(dest, disposition, image_id)
            tracker = ProgressTracker(int(response.headers.get("content-length") or 0), progress)
            partial = target.with_name(f".{target.name}.part")
            try:
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes(CHUNK_BYTES):
                        out.write(chunk)
                        tracker.add(len(chunk))
                partial.replace(target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
        return target

    # ------------------------------------------------------------------------------ writing

    def delete(self, image_id: str, *, permanent: bool = False) -> None:
        """Delete an image (to the trash where the service keeps one, unless `permanent`)."""
        params = {"permanent": "true"} if permanent else None
        self._request("DELETE", f"/images/{quote(image_id, safe='')}", params=params)

    def complete(self, image_id: str) -> Image:
        """Have the service verify an uploaded image now: the ready image, or ImageRejected."""
        path = f"/images/{quote(image_id, safe='')}/complete"
        return Image.from_json(
            self._request("POST", path, image_id=image_id, also_retry=VERIFY_AGAIN).json()
        )

    def upload(
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
        """Upload a file (a path) or bytes and return the verified, ready image.

        Up to `multipart_threshold` bytes go in one presigned POST form; larger ones as a
        multipart upload with parallel parts, resumable: after an interruption (an error, a
        `progress` callback that raised, Ctrl-C), the same call lists the parts S3 holds and
        sends only the others. `content_type` is guessed from the bytes, else the file name.
        `progress(bytes_sent, total)` is called as bytes go out (from worker threads for
        multipart). With `skip_duplicates` the file is hashed first and an image of the
        user with the same SHA-256 is returned instead of uploading. Raises ImageRejected
        (with `reason`) when the service refuses the bytes.
        """
        with Source(source, filename) as src:
            plan = UploadPlan.make(src, content_type, tags, description, user_id)
            if skip_duplicates:
                found = self.find_by_sha256(src.sha256(), user_id)
                if found:
                    return found[0]
            tracker = ProgressTracker(src.size, progress)
            if src.size <= multipart_threshold:
                try:
                    return self._form_upload(src, plan, tracker)
                except PayloadTooLarge:
                    pass  # above the form's limit: multipart may take it
            return self._multipart(src, plan, tracker)

    def _form_upload(self, src: Source, plan: UploadPlan, tracker: ProgressTracker) -> Image:
        body = plan.meta.upload_body()
        started = self._request("POST", "/images/upload", json=body, idempotent=False).json()
        image_id = str(started["image_id"])
        try:
            form = _common.form_body(started, src, plan)

            def stream() -> _common.Body:
                return _common.form_stream(form, src, tracker)

            self._storage("POST", form.url, stream, "upload", tracker, form.body.content_type)
        except Exception:
            with contextlib.suppress(ApiError, ServiceUnreachable):
                self.delete(image_id)
            raise
        return self.complete(image_id)

    def _multipart(self, src: Source, plan: UploadPlan, tracker: ProgressTracker) -> Image:
        key = plan.resume_key(self.base_url, src)
        state = self.resume_store.load(key)
        held: dict[int, str] = {}
        if state is not None and _common.state_matches(state, self.base_url, src):
            try:
                held = held_parts(self._list_parts(state), layout(src.size, state.part_size))
            except NotFound:
                self.resume_store.discard(key)
                done = self._finished(state, src)
                if done is not None:
                    return done
                state = None
        else:
            state = None
        if state is None:
            body = plan.meta.multipart_body()
            started = self._request("POST", "/s3/multipart", json=body, idempotent=False).json()
            state = _common.new_state(self.base_url, src, plan, started)
            self.resume_store.save(key, state)
        parts = layout(src.size, state.part_size)
        tracker.add(sum(part.length for part in parts if part.number in held))
        held.update(
            self._send_parts(state, src, [p for p in parts if p.number not in held], tracker)
        )
        return self._complete_multipart(state, held, key)

    def _list_parts(self, state: UploadState) -> list[dict[str, Any]]:
        path = f"/s3/multipart/{quote(state.upload_id, safe='')}"
        listing: list[dict[str, Any]] = self._request("GET", path, params={"key": state.key}).json()
        return listing

    def _finished(self, state: UploadState, src: Source) -> Image | None:
        """An upload the service no longer lists: ready already (completed before a crash)?"""
        try:
            image = self.get(state.image_id)
        except NotFound:
            return None
        return image if image.ready and image.size == src.size else None

    def _complete_multipart(self, state: UploadState, held: dict[int, str], key: str) -> Image:
        path = f"/s3/multipart/{quote(state.upload_id, safe='')}/complete"
        body = _common.complete_body(held)
        try:
            self._request(
                "POST",
                path,
                params={"key": state.key},
                json=body,
                image_id=state.image_id,
                also_retry=VERIFY_AGAIN,
            )
        except NotFound:
            # Assembled by an earlier try whose answer was lost: verify as `complete` does.
            self.resume_store.discard(key)
            return self.complete(state.image_id)
        except ApiError as error:
            if _common.upload_is_over(error):
                self.resume_store.discard(key)
            raise
        self.resume_store.discard(key)
        return self.get(state.image_id)

    def _send_parts(
        self, state: UploadState, src: Source, missing: list[Part], tracker: ProgressTracker
    ) -> dict[int, str]:
        """PUT the parts, `part_concurrency` at a time; the first failure stops the others."""
        if not missing:
            return {}
        signer = _PartSigner(self, state, [part.number for part in missing])
        stop = threading.Event()
        if self._part_concurrency == 1 or len(missing) == 1:
            return {p.number: self._put_part(signer, src, p, tracker, stop) for p in missing}
        etags: dict[int, str] = {}
        workers = min(self._part_concurrency, len(missing))
        with ThreadPoolExecutor(workers, thread_name_prefix="cis-part") as pool:
            futures: dict[Future[str], Part] = {
                pool.submit(self._put_part, signer, src, part, tracker, stop): part
                for part in missing
            }
            try:
                for future in as_completed(futures):
                    etags[futures[future].number] = future.result()
            except BaseException:
                stop.set()  # the others stop at their next chunk
                for future in futures:
                    future.cancel()
                raise
        return etags

    def _put_part(
        self,
        signer: _PartSigner,
        src: Source,
        part: Part,
        tracker: ProgressTracker,
        stop: threading.Event,
    ) -> str:
        if stop.is_set():
            raise Stopped
        data = src.read(part.offset, part.length)

        def body() -> _common.Body:
            return _common.part_stream(data, tracker, stop)

        refresh = False
        attempt = 0
        while True:
            url = signer.url(part.number, refresh=refresh)
            try:
                response = self._storage("PUT", url, body, f"part {part.number}", tracker)
            except ApiError as error:
                # 403: the signed URL expired (a slow link): sign it again, once.
                if error.status != 403 or refresh or attempt >= self._policy.retries:
                    raise
                refresh = True
                attempt += 1
                continue
            return _common.etag(response, part.number)


class _PartSigner:
    """Presigned part URLs, signed in batches just before they are needed (they expire)."""

    def __init__(self, client: Client, state: UploadState, missing: list[int]) -> None:
        self._client = client
        self._state = state
        self._missing = missing
        self._urls: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def url(self, number: int, refresh: bool = False) -> str:
        """The URL of part `number` (signed anew when asked, or when it is old)."""
        with self._lock:
            now = time.monotonic()
            cached = self._urls.get(number)
            if cached is not None and not refresh and now - cached[1] < URL_LIFETIME_S:
                return cached[0]
            fresh = [n for n, (_, at) in self._urls.items() if now - at < URL_LIFETIME_S]
            window = sign_window(number, self._missing, [n for n in fresh if n != number])
            path = f"/s3/multipart/{quote(self._state.upload_id, safe='')}/batch"
            params = {"key": self._state.key, "partNumbers": ",".join(map(str, window))}
            signed = self._client._request("GET", path, params=params).json()["presignedUrls"]
            for name, url in signed.items():
                self._urls[int(name)] = (str(url), now)
            return self._urls[number][0]
