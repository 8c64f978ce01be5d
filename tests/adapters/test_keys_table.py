"""The API-key store and the shared rate limiter against DynamoDB over HTTP (moto's server)."""

from __future__ import annotations

import argparse
import hashlib
import uuid
from typing import TYPE_CHECKING

import boto3
import pytest

from cloud_image_service.adapters.clients import client_config
from cloud_image_service.adapters.keys_table import KEY_ATTRIBUTE, TTL_ATTRIBUTE, ApiKeyStore
from cloud_image_service.adapters.rate_counter import DynamoRateLimiter
from cloud_image_service.auth.authenticator import ApiKeyAuthenticator, Authenticator
from cloud_image_service.auth.caller import Caller
from cloud_image_service.auth.errors import TooManyRequests, Unauthorized
from cloud_image_service.auth.ratelimit import RateLimit
from cloud_image_service.cli import keys as keys_cli
from cloud_image_service.domain.errors import BackendUnavailable
from cloud_image_service.local.devstores import free_port
from tests.limiting import Clock, assert_three_per_second

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def dynamodb_client(endpoint_url: str, timeout: float = 5.0) -> DynamoDBClient:
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return session.client("dynamodb", endpoint_url=endpoint_url, config=client_config(timeout))


@pytest.fixture
def client(moto_endpoint: str) -> DynamoDBClient:
    return dynamodb_client(moto_endpoint)


@pytest.fixture
def store(client: DynamoDBClient) -> ApiKeyStore:
    store = ApiKeyStore(f"keys-{uuid.uuid4().hex[:12]}", client)
    store.ensure_table()
    return store


# --- Keys ---------------------------------------------------------------------------------


def test_ensure_table_is_idempotent_and_enables_ttl(client: DynamoDBClient) -> None:
    store = ApiKeyStore(f"keys-{uuid.uuid4().hex[:12]}", client)
    assert store.ensure_table() is True
    assert store.ensure_table() is False
    ttl = client.describe_time_to_live(TableName=store.table)["TimeToLiveDescription"]
    assert ttl.get("TimeToLiveStatus") == "ENABLED"
    assert ttl.get("AttributeName") == TTL_ATTRIBUTE
    store.ping()


def test_created_key_is_found_by_lookup(store: ApiKeyStore) -> None:
    key_id, plaintext = store.create("alice", admin=True)
    assert plaintext.startswith("cis_")
    assert len(plaintext) > 40
    found = store.lookup(plaintext)
    assert found is not None
    assert (found.key_id, found.user_id, found.admin, found.revoked) == (
        key_id,
        "alice",
        True,
        False,
    )
    assert found.created_at.tzinfo is not None


def test_only_the_hash_is_stored(store: ApiKeyStore, client: DynamoDBClient) -> None:
    key_id, plaintext = store.create("alice")
    items = client.scan(TableName=store.table)["Items"]
    assert len(items) == 1
    assert plaintext not in repr(items)
    digest = hashlib.sha256(plaintext.encode()).hexdigest()
    assert items[0][KEY_ATTRIBUTE] == {"S": digest}
    assert key_id == digest[:8]


def test_unknown_and_malformed_keys_are_not_found(store: ApiKeyStore) -> None:
    store.create("alice")
    assert store.lookup("cis_" + "A" * 43) is None
    assert store.lookup("not-one-of-ours") is None
    assert store.lookup("cis_" + "A" * 500) is None


def test_revoked_key_stops_working_at_once(store: ApiKeyStore) -> None:
    key_id, plaintext = store.create("alice")
    other_id, other = store.create("bob")
    assert store.revoke(key_id) is True
    assert store.lookup(plaintext) is None
    assert store.lookup(other) is not None  # only that key
    assert store.revoke(key_id) is True  # idempotent
    auth = Authenticator("api-key", api_keys=ApiKeyAuthenticator(store))
    with pytest.raises(Unauthorized, match="unknown or revoked"):
        auth.authenticate({"x-api-key": plaintext})
    assert auth.authenticate({"x-api-key": other}) == Caller("bob", False, "api-key")
    assert other_id != key_id


def test_revoking_an_unknown_id_is_false(store: ApiKeyStore) -> None:
    store.create("alice")
    assert store.revoke("00000000") is False
    assert store.revoke("not-hex!") is False
    assert store.revoke("") is False


def test_list_shows_every_key_but_no_counter(store: ApiKeyStore, client: DynamoDBClient) -> None:
    ids = [store.create(f"user{i}", admin=i == 0)[0] for i in range(3)]
    store.revoke(ids[1])
    DynamoRateLimiter(store.table, client, RateLimit(5, 60)).hit("user:user0")
    records = {record.key_id: record for record in store.list()}
    assert set(records) == set(ids)
    assert [records[i].revoked for i in ids] == [False, True, False]
    assert [records[i].admin for i in ids] == [True, False, False]
    assert records[ids[2]].user_id == "user2"


def test_list_of_an_empty_table(store: ApiKeyStore) -> None:
    assert store.list() == []


def test_an_unreachable_table_is_a_503() -> None:
    store = ApiKeyStore("keys", dynamodb_client(f"http://127.0.0.1:{free_port()}", 0.5))
    with pytest.raises(BackendUnavailable):
        store.lookup("cis_" + "A" * 43)
    with pytest.raises(BackendUnavailable):
        store.create("alice")


def test_a_missing_table_is_a_503(client: DynamoDBClient) -> None:
    store = ApiKeyStore(f"absent-{uuid.uuid4().hex[:8]}", client)
    with pytest.raises(BackendUnavailable):
        store.lookup("cis_" + "A" * 43)


# --- The shared rate limiter --------------------------------------------------------------


def test_limit_answers_429_then_recovers_in_the_next_window(
    store: ApiKeyStore, client: DynamoDBClient
) -> None:
    clock = Clock(2_000_000.25)
    limiter = DynamoRateLimiter(store.table, client, RateLimit(3, 1), clock)
    assert_three_per_second(limiter, clock)


def test_replicas_share_one_budget(store: ApiKeyStore, moto_endpoint: str) -> None:
    clock = Clock(3_000_000.0)
    limit = RateLimit(3, 60)
    first = DynamoRateLimiter(store.table, dynamodb_client(moto_endpoint), limit, clock)
    second = DynamoRateLimiter(store.table, dynamodb_client(moto_endpoint), limit, clock)
    first.hit("user:alice")
    second.hit("user:alice")
    first.hit("user:alice")
    with pytest.raises(TooManyRequests) as caught:
        second.hit("user:alice")
    assert caught.value.retry_after == 60


def test_refused_requests_do_not_count(store: ApiKeyStore, client: DynamoDBClient) -> None:
    clock = Clock(4_000_020.0)  # a window start: 60 * 66_667
    limiter = DynamoRateLimiter(store.table, client, RateLimit(2, 60), clock)
    limiter.hit("user:alice")
    limiter.hit("user:alice")
    for _ in range(3):
        with pytest.raises(TooManyRequests):
            limiter.hit("user:alice")
    key = {KEY_ATTRIBUTE: {"S": "rate#uploads#user:alice#4000020"}}
    item = client.get_item(TableName=store.table, Key=key, ConsistentRead=True)["Item"]
    assert item["hits"] == {"N": "2"}
    assert int(item[TTL_ATTRIBUTE]["N"]) > 4_000_080  # dropped by TTL after its window


def test_limiter_outage_is_a_503() -> None:
    client = dynamodb_client(f"http://127.0.0.1:{free_port()}", 0.5)
    with pytest.raises(BackendUnavailable):
        DynamoRateLimiter("keys", client, RateLimit(1, 1)).hit("user:alice")


# --- The `keys` commands ------------------------------------------------------------------


def run_cli(store: ApiKeyStore, *argv: str) -> int:
    root = argparse.ArgumentParser()
    keys_cli.add_commands(root.add_subparsers(dest="command", required=True), lambda: store)
    args = root.parse_args(argv)
    code: int = args.handler(args)
    return code


def test_keys_commands(store: ApiKeyStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(store, "keys", "create", "--user", "alice@example.com", "--admin") == 0
    out, err = capsys.readouterr()
    plaintext = out.strip()
    record = store.lookup(plaintext)
    assert record is not None
    assert record.admin
    assert record.key_id in err
    assert "shown only now" in err

    assert run_cli(store, "keys", "list") == 0
    out, _ = capsys.readouterr()
    assert record.key_id in out
    assert "alice@example.com" in out
    assert plaintext not in out

    assert run_cli(store, "keys", "revoke", record.key_id) == 0
    assert store.lookup(plaintext) is None
    assert run_cli(store, "keys", "revoke", "ffffffff") == 1
    run_cli(store, "keys", "list")
    assert "revoked" in capsys.readouterr().out


def test_keys_create_refuses_a_bad_user_id(store: ApiKeyStore) -> None:
    with pytest.raises(SystemExit):
        run_cli(store, "keys", "create", "--user", "no spaces/allowed")


def test_keys_command_reports_an_outage(capsys: pytest.CaptureFixture[str]) -> None:
    store = ApiKeyStore("keys", dynamodb_client(f"http://127.0.0.1:{free_port()}", 0.5))
    assert run_cli(store, "keys", "list") == 1
    assert "keys list failed: DynamoDB is unavailable" in capsys.readouterr().err
