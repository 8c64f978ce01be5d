"""The real store set starts again and again without a port collision."""

from __future__ import annotations

import socket

import pytest

from cloud_image_service.local.devstores import start_stores

pytestmark = [pytest.mark.real, pytest.mark.seaweed]


def test_the_store_set_starts_five_times_in_a_row(tmp_path_factory: pytest.TempPathFactory) -> None:
    for round_ in range(5):
        s3, dynamodb = start_stores(tmp_path_factory.mktemp(f"round{round_}"))
        try:
            weed_ports = set(s3.ports.values())
            assert dynamodb.port not in weed_ports
            assert s3.running
            assert dynamodb.running
        finally:
            s3.stop()
            dynamodb.stop()


def test_a_port_taken_before_the_bind_is_chosen_again(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    s3, dynamodb = start_stores(tmp_path_factory.mktemp("taken"))
    try:
        dynamodb.stop()
        dynamodb._started = False  # as if never started: a first start may choose again
        with socket.socket() as thief:
            thief.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            thief.bind(("127.0.0.1", dynamodb.port))
            thief.listen()
            taken = dynamodb.port
            dynamodb.start()
        assert dynamodb.port != taken
        assert dynamodb.running
    finally:
        s3.stop()
        dynamodb.stop()
