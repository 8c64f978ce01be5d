"""The console script, run as a user runs it: a subprocess with CIS_* variables."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import boto3
import pytest

from tests.conftest import RealStores

pytestmark = pytest.mark.real


def _run(stores: RealStores, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = os.environ | stores.env | env
    environment |= {
        "CIS_BACKEND": "aws",
        "CIS_S3_ENDPOINT_URL": stores.s3.endpoint_url,
        "CIS_DYNAMODB_ENDPOINT_URL": stores.dynamodb.endpoint_url,
    }
    command = [sys.executable, "-m", "cloud_image_service.cli", *args]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)


def test_init_is_idempotent(real_stores: RealStores) -> None:
    names = {
        "CIS_BUCKET": f"cli-{uuid.uuid4().hex[:8]}",
        "CIS_TABLE": f"cli-{uuid.uuid4().hex[:8]}",
    }
    first = _run(real_stores, "init", CIS_CORS_ORIGINS="https://app.example", **names)
    assert first.returncode == 0, first.stderr
    assert "ready: bucket" in first.stdout
    second = _run(real_stores, "init", **names)
    assert second.returncode == 0, second.stderr
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=real_stores.dynamodb.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    table = ddb.describe_table(TableName=names["CIS_TABLE"])["Table"]
    indexes = {index["IndexName"] for index in table["GlobalSecondaryIndexes"]}
    assert indexes >= {"by_user", "pending_by_expiry"}


def test_sweep_runs_once(real_stores: RealStores) -> None:
    names = {
        "CIS_BUCKET": f"cli-{uuid.uuid4().hex[:8]}",
        "CIS_TABLE": f"cli-{uuid.uuid4().hex[:8]}",
    }
    assert _run(real_stores, "init", **names).returncode == 0
    result = _run(real_stores, "sweep", **names)
    assert result.returncode == 0, result.stderr
    assert "stray objects deleted: 0" in result.stdout


def test_bad_configuration_is_a_clear_error(real_stores: RealStores) -> None:
    result = _run(real_stores, "init", CIS_PRESIGN_TTL_SECONDS="soon")
    assert result.returncode != 0
    assert "presign_ttl_seconds" in result.stderr
    assert "Traceback" not in result.stderr
