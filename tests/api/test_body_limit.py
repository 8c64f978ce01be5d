"""The 64 KiB body cap counts bytes received, chunked or not, before authentication."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator

import pytest

from cloud_image_service.api.app import create_app
from cloud_image_service.config import Settings
from tests.conftest import AppServer

SECRET = "s" * 40
CHUNK = b"x" * 65536


@pytest.fixture(scope="module")
def jwt_app() -> Iterator[AppServer]:
    """A service that wants a token on every /images route."""
    server = AppServer(
        create_app(Settings(backend="embedded", auth_mode="jwt", jwt_secret=SECRET))
    ).start()
    yield server
    server.stop()


def _send_chunked(port: int, limit: int) -> tuple[int, bytes]:
    """POST a chunked body without Content-Length until the server answers; (sent, reply)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /images/upload HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sent = 0
        try:
            while sent < limit:
                if select.select([sock], [], [], 0)[0]:
                    break  # the answer came while we were still sending
                sock.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
                sent += len(CHUNK)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the server closed its side: what it answered is still readable
        reply = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            reply += data
            if b"\r\n\r\n" in reply and reply.rstrip().endswith(b"}"):
                break
        return sent, reply


def test_a_chunked_body_is_cut_off_at_64_kib_before_authentication(jwt_app: AppServer) -> None:
    limit = 300 * 1024 * 1024  # what the review sent
    sent, reply = _send_chunked(jwt_app.port, limit)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), reply[:200]
    assert json.loads(body)["code"] == "payload_too_large"  # not a 401: no token was sent
    assert sent < 32 * 1024 * 1024, sent  # the server stopped reading long before the end


def test_a_small_chunked_body_still_works(jwt_app: AppServer) -> None:
    body = json.dumps({"content_type": "image/png"}).encode()
    with socket.create_connection(("127.0.0.1", jwt_app.port), timeout=10) as sock:
        sock.sendall(
            b"POST /images/upload HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n0\r\n\r\n"
            % (len(body), body)
        )
        reply = b""
        while data := sock.recv(65536):
            reply += data
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]  # read whole, then authenticated
