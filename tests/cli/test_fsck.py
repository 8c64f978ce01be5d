"""`fsck` finds each fault injected with boto3 behind the service's back, and repairs it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import AppServer, RealStores, start_app
from tests.images import png_bytes, presign, upload_image

pytestmark = pytest.mark.real


@dataclass
class Faults:
    """The service, and the id of the image behind each injected fault."""

    app: AppServer
    names: dict[str, str]
    ids: dict[str, str]


def _ready(api: httpx.Client, user: str) -> str:
    image_id: str = upload_image(api, user, png_bytes(4, 4))["image_id"]
    assert api.post(f"/images/{image_id}/complete").json()["status"] == "ready"
    return image_id


@pytest.fixture(scope="module")
def faults(real_stores: RealStores) -> Iterator[Faults]:
    settings = real_stores.settings()
    app = start_app(settings)
    s3, bucket = app.runtime.storage.client, settings.bucket
    ddb, table = app.runtime.catalog.client, settings.table
    # DynamoDB Local deletes expired items at once: without TTL the stale pending stays.
    ddb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": False, "AttributeName": "expires_at"}
    )
    ids: dict[str, str] = {}
    with httpx.Client(base_url=app.url, timeout=30) as api:
        for kind in ("consistent", "missing_object", "size_mismatch", "checksum_mismatch"):
            ids[kind] = _ready(api, "fsck-user")
        ids["unfinished_delete"] = _ready(api, "fsck-user")
        ids["missing_variant"] = _ready(api, "fsck-user")
        ids["orphan_variant"] = _ready(api, "fsck-user")
        ids["stale_pending"] = presign(api, "fsck-user")["image_id"]
    while app.runtime.make_worker().run_jobs_once():  # the variants of the ready ones
        pass
    ids["orphan_object"] = str(uuid.uuid4())
    s3.put_object(Bucket=bucket, Key=f"images/{ids['orphan_object']}", Body=b"no record")
    s3.delete_object(Bucket=bucket, Key=f"images/{ids['missing_object']}")
    s3.delete_object(Bucket=bucket, Key=f"variants/{ids['missing_variant']}/thumb")
    s3.put_object(Bucket=bucket, Key=f"variants/{ids['orphan_variant']}/old", Body=b"x")
    s3.put_object(Bucket=bucket, Key=f"images/{ids['size_mismatch']}", Body=b"x" * 10)
    same_size = bytearray(png_bytes(4, 4))
    same_size[-20] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=f"images/{ids['checksum_mismatch']}", Body=bytes(same_size))

    def set_attributes(image_id: str, expression: str, values: dict[str, Any]) -> None:
        ddb.update_item(
            TableName=table,
            Key={"image_id": {"S": image_id}},
            UpdateExpression=expression,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values,
        )

    set_attributes(
        ids["stale_pending"],
        "SET expires_at = :past, #s = :s",
        {":past": {"N": "1000"}, ":s": {"S": "pending"}},
    )
    set_attributes(ids["unfinished_delete"], "SET #s = :s", {":s": {"S": "deleting"}})
    names = {"CIS_BUCKET": bucket, "CIS_TABLE": table}
    yield Faults(app, names, ids)
    app.stop()


def _fsck(stores: RealStores, faults: Faults, *args: str) -> tuple[int, dict[str, Any]]:
    result = stores.run_cli("fsck", "--json", *args, **faults.names)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.returncode, json.loads(result.stdout)


def _found(report: dict[str, Any]) -> dict[str, str]:
    return {p["kind"]: p["image_id"] for p in report["problems"]}


def test_young_items_are_skipped_by_default(real_stores: RealStores, faults: Faults) -> None:
    code, report = _fsck(real_stores, faults)
    assert code == 0
    assert report["problems"] == []  # everything is younger than URL lifetime + pending TTL


def test_every_injected_fault_is_found_and_nothing_changes(
    real_stores: RealStores, faults: Faults
) -> None:
    code, report = _fsck(real_stores, faults, "--min-age", "0")
    assert code == 1
    found = _found(report)
    expected = {k: v for k, v in faults.ids.items() if k not in ("consistent", "checksum_mismatch")}
    assert found == expected
    assert report["counts"]["checksum_mismatch"] == 0  # only with --deep
    assert {p["action"] for p in report["problems"]} == {"none"}
    code, deep = _fsck(real_stores, faults, "--min-age", "0", "--deep")
    assert _found(deep)["checksum_mismatch"] == faults.ids["checksum_mismatch"]
    assert faults.ids["consistent"] not in {p["image_id"] for p in deep["problems"]}
    # A check alone changed nothing.
    api = httpx.Client(base_url=faults.app.url, timeout=30)
    assert api.get(f"/images/{faults.ids['missing_object']}").json()["status"] == "ready"


def test_repair_then_consistent(real_stores: RealStores, faults: Faults) -> None:
    code, report = _fsck(real_stores, faults, "--min-age", "0", "--deep", "--repair")
    assert code == 0, report
    actions = {p["kind"]: p["action"] for p in report["problems"]}
    assert actions["orphan_object"] == "deleted object"
    assert actions["missing_object"] == "rejected: object missing"
    assert actions["size_mismatch"] == "rejected: content changed"
    assert actions["checksum_mismatch"] == "rejected: content changed"
    assert actions["stale_pending"] == "rejected"
    assert actions["unfinished_delete"] == "removed"
    assert actions["missing_variant"] == "record fixed: variant due again"
    assert actions["orphan_variant"] == "deleted object"
    code, after = _fsck(real_stores, faults, "--min-age", "0", "--deep")
    assert (code, after["problems"]) == (0, []), after["problems"]
    with httpx.Client(base_url=faults.app.url, timeout=30) as api:
        missing = api.get(f"/images/{faults.ids['missing_object']}").json()
        assert (missing["status"], missing["reason"]) == ("rejected", "object missing")
        assert api.get(f"/images/{faults.ids['unfinished_delete']}").status_code == 404
        fixed = faults.ids["missing_variant"]
        # Made again: by the next job run (or already, where a worker runs in the app).
        if set(api.get(f"/images/{fixed}").json()["variants"]) == {"preview"}:
            assert faults.app.runtime.make_worker().run_jobs_once() >= 1
        assert set(api.get(f"/images/{fixed}").json()["variants"]) == {"thumb", "preview"}
        consistent = faults.ids["consistent"]
        assert api.get(f"/images/{consistent}/download").status_code == 200


def test_a_store_it_cannot_reach_is_exit_2(real_stores: RealStores) -> None:
    result = real_stores.run_cli("fsck", CIS_TABLE="no-such-table", CIS_BUCKET="no-such-bucket")
    assert result.returncode == 2
    assert "fsck could not run" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
