"""Our presigned URLs and POST forms are botocore's, byte for byte (adapters/presign.py)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest

from cloud_image_service.adapters.clients import make_s3_client
from cloud_image_service.adapters.presign import Presigner, session_keys

NOW = datetime(2026, 11, 26, 12, 34, 56, tzinfo=UTC)


def _session(token: str | None) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        aws_session_token=token,
        region_name="eu-west-3",
    )


@pytest.mark.parametrize("endpoint", [None, "http://127.0.0.1:8333"])
@pytest.mark.parametrize("token", [None, "session/token+with=odd chars"])
def test_urls_are_botocores(endpoint: str | None, token: str | None) -> None:
    session = _session(token)
    client = make_s3_client(session, endpoint, 5)
    signer = Presigner(client, "my-bucket", session_keys(session))
    key = "images/0b6f3c1e-7f51-4a5e-9a43-1f0e0d7c2b11.png"
    with (
        mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)),
        mock.patch("cloud_image_service.adapters.presign.datetime") as ours,
    ):
        ours.now.return_value = NOW
        theirs_put = client.generate_presigned_url(
            "put_object",
            Params={"Bucket": "my-bucket", "Key": key, "ContentType": "image/png"},
            ExpiresIn=900,
        )
        theirs_get = client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": "my-bucket",
                "Key": key,
                "ResponseContentType": "image/png",
                "ResponseContentDisposition": 'attachment; filename="a b.png"; '
                "filename*=UTF-8''a%20b.png",
            },
            ExpiresIn=900,
        )
        put = signer.url("PUT", key, 900, content_type="image/png")
        get = signer.url(
            "GET",
            key,
            900,
            response={
                "response-content-type": "image/png",
                "response-content-disposition": 'attachment; filename="a b.png"; '
                "filename*=UTF-8''a%20b.png",
            },
        )
    for ours_url, theirs_url in ((put, theirs_put), (get, theirs_get)):
        assert _parts(ours_url) == _parts(theirs_url)


def _parts(url: str) -> tuple[str, str, dict[str, str]]:
    split = urlsplit(url)
    return split.netloc, split.path, dict(parse_qsl(split.query))


def test_post_policy_signs_what_botocore_signs() -> None:
    session = _session("tok")
    client = make_s3_client(session, None, 5)
    signer = Presigner(client, "my-bucket", session_keys(session))
    conditions = [{"Content-Type": "image/png"}, ["content-length-range", 1, 100]]
    form = signer.post("uploads/x", 900, {"Content-Type": "image/png"}, conditions)
    theirs = client.generate_presigned_post(
        "my-bucket",
        "uploads/x",
        Fields={"Content-Type": "image/png"},
        Conditions=list(conditions),
        ExpiresIn=900,
    )
    assert form["url"] == theirs["url"]
    assert set(form["fields"]) == set(theirs["fields"])
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    their_policy = json.loads(base64.b64decode(theirs["fields"]["policy"]))
    # Same conditions (order aside); the dates differ by the moment each was signed.
    dated = ("x-amz-date", "x-amz-credential")
    assert sorted(map(json.dumps, _undated(policy["conditions"], dated))) == sorted(
        map(json.dumps, _undated(their_policy["conditions"], dated))
    )


def _undated(conditions: list[object], names: tuple[str, ...]) -> list[object]:
    return [c for c in conditions if not (isinstance(c, dict) and set(c) & set(names))]
