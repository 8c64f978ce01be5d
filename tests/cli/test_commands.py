"""The console script, run as a user runs it: a subprocess with CIS_* variables."""

from __future__ import annotations

import uuid

import boto3
import pytest

from tests.conftest import RealStores

pytestmark = pytest.mark.real


def test_init_is_idempotent(real_stores: RealStores) -> None:
    names = {
        "CIS_BUCKET": f"cli-{uuid.uuid4().hex[:8]}",
        "CIS_TABLE": f"cli-{uuid.uuid4().hex[:8]}",
    }
    first = real_stores.run_cli("init", CIS_CORS_ORIGINS="https://app.example", **names)
    assert first.returncode == 0, first.stderr
    assert "ready: bucket" in first.stdout
    second = real_stores.run_cli("init", **names)
    assert second.returncode == 0, second.stderr
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=real_stores.dynamodb_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    table = ddb.describe_table(TableName=names["CIS_TABLE"])["Table"]
    indexes = {index["IndexName"] for index in table["GlobalSecondaryIndexes"]}
    assert indexes >= {"by_user", "due_by_time"}


def test_sweep_runs_once(real_stores: RealStores) -> None:
    names = {
        "CIS_BUCKET": f"cli-{uuid.uuid4().hex[:8]}",
        "CIS_TABLE": f"cli-{uuid.uuid4().hex[:8]}",
    }
    assert real_stores.run_cli("init", **names).returncode == 0
    result = real_stores.run_cli("sweep", **names)
    assert result.returncode == 0, result.stderr
    assert "stray objects deleted: 0" in result.stdout


def test_bad_configuration_is_a_clear_error(real_stores: RealStores) -> None:
    result = real_stores.run_cli("init", CIS_PRESIGN_TTL_SECONDS="soon")
    assert result.returncode != 0
    assert "CIS_PRESIGN_TTL_SECONDS" in result.stderr
    assert "Traceback" not in result.stderr
