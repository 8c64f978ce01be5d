"""The embedded backend keeps HTTP connections alive, as AWS does (local/embedded.py)."""

from __future__ import annotations

import socket
from typing import Any

import boto3
import pytest

from cloud_image_service.adapters.clients import make_dynamodb_client
from cloud_image_service.local.embedded import ACCESS_KEY, SECRET_KEY


def test_dynamodb_calls_reuse_one_connection(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = boto3.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="us-east-1"
    )
    client = make_dynamodb_client(session, moto_endpoint, 5)
    answers: list[dict[str, Any]] = []
    client.meta.events.register(
        "after-call.dynamodb", lambda http_response, **_: answers.append(http_response.headers)
    )
    client.list_tables()  # the first call connects
    connects: list[object] = []
    real_connect = socket.socket.connect

    def counting(sock: socket.socket, address: Any) -> None:
        connects.append(address)
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", counting)
    for _ in range(20):
        client.list_tables()
    assert connects == []  # werkzeug's server closed every connection: 20 new ones
    assert all(headers.get("Connection", "").lower() != "close" for headers in answers)
