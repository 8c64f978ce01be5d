"""SigV4 presigned URLs and POST policies for one bucket, without botocore's per-call work.

botocore's `generate_presigned_url` resolves the endpoint, serializes, emits a dozen events
and derives the signing key again on every call: about 0.5 ms of CPU here, and every upload
signs two (the PUT and the POST form), every download one. The signature itself is a few
HMACs (AWS's "Authenticating Requests: Using Query Parameters" and "POST policy" pages).
So botocore presigns once, at start-up, for a probe key: that URL gives the scheme, host,
path prefix (path-style or virtual-hosted, custom endpoint or AWS) and credential scope of
this client, and what is signed per request is the same canonical request botocore
builds, with the signing key kept for the day. Credentials are read per request from the
session's provider, so rotated role credentials are used as soon as botocore refreshes them.
`tests/adapters/test_presign.py` checks the URLs against botocore's, byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, quote, urlsplit

from boto3 import Session
from botocore.exceptions import BotoCoreError, NoCredentialsError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ALGORITHM = "AWS4-HMAC-SHA256"
_PROBE = "cis-presign-probe"
_UNSIGNED = "UNSIGNED-PAYLOAD"


class Keys(NamedTuple):
    """What signs: botocore's ReadOnlyCredentials has these three fields."""

    access_key: str
    secret_key: str
    token: str | None


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


class Presigner:
    """Presigned GET and PUT URLs and POST forms for `bucket`, as `client` would sign them."""

    def __init__(self, client: S3Client, bucket: str, credentials: Callable[[], Keys]) -> None:
        self.bucket = bucket
        self.credentials = credentials
        probe = urlsplit(
            client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": _PROBE}, ExpiresIn=60
            )
        )
        self.origin = f"{probe.scheme}://{probe.netloc}"
        self.host = probe.netloc
        self.prefix = probe.path.removesuffix(_PROBE)  # "/bucket/" (path style) or "/"
        scope = parse_qs(probe.query)["X-Amz-Credential"][0].split("/")
        self.region, self.service = scope[2], scope[3]
        self.post_url = client.generate_presigned_post(bucket, _PROBE)["url"]
        self._keys: dict[tuple[str, str], bytes] = {}

    def url(
        self,
        method: str,
        key: str,
        expires: int,
        content_type: str | None = None,
        response: dict[str, str] | None = None,
    ) -> str:
        """A presigned URL; a `content_type` is signed as a header (S3 refuses any other)."""
        keys = self.credentials()
        now = datetime.now(UTC)
        amz_date, scope = self._scope(now)
        headers = {"host": self.host}
        if content_type is not None:
            headers["content-type"] = content_type
        signed = ";".join(sorted(headers))
        params = {
            "X-Amz-Algorithm": ALGORITHM,
            "X-Amz-Credential": f"{keys.access_key}/{scope}",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(expires),
            "X-Amz-SignedHeaders": signed,
            **(response or {}),
        }
        if keys.token:
            params["X-Amz-Security-Token"] = keys.token
        query = "&".join(
            f"{_encode(name)}={_encode(value)}" for name, value in sorted(params.items())
        )
        path = self.prefix + quote(key, safe="/-_.~")
        canonical = "\n".join(
            [
                method,
                path,
                query,
                "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)),
                signed,
                _UNSIGNED,
            ]
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        signature = self._sign(keys, now, f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}")
        return f"{self.origin}{path}?{query}&X-Amz-Signature={signature}"

    def post(
        self, key: str, expires: int, fields: dict[str, str], conditions: list[Any]
    ) -> dict[str, Any]:
        """A POST form: `fields` and a policy of `conditions`, the bucket, the key, the scope."""
        keys = self.credentials()
        now = datetime.now(UTC)
        amz_date, scope = self._scope(now)
        form = {**fields, "key": key}
        signing = {
            "x-amz-algorithm": ALGORITHM,
            "x-amz-credential": f"{keys.access_key}/{scope}",
            "x-amz-date": amz_date,
        }
        if keys.token:
            signing["x-amz-security-token"] = keys.token
        expiration = (now + timedelta(seconds=expires)).strftime("%Y-%m-%dT%H:%M:%SZ")
        policy = {
            "expiration": expiration,
            "conditions": [
                *conditions,
                {"bucket": self.bucket},
                {"key": key},
                *({name: value} for name, value in signing.items()),
            ],
        }
        encoded = base64.b64encode(json.dumps(policy).encode()).decode()
        form |= signing | {"policy": encoded, "x-amz-signature": self._sign(keys, now, encoded)}
        return {"url": self.post_url, "fields": form}

    def _scope(self, now: datetime) -> tuple[str, str]:
        day = now.strftime("%Y%m%d")
        return now.strftime("%Y%m%dT%H%M%SZ"), f"{day}/{self.region}/{self.service}/aws4_request"

    def _sign(self, keys: Keys, now: datetime, text: str) -> str:
        day = now.strftime("%Y%m%d")
        signing_key = self._keys.get((keys.secret_key, day))
        if signing_key is None:  # once a day (and per rotated secret)
            signing_key = ("AWS4" + keys.secret_key).encode()
            for part in (day, self.region, self.service, "aws4_request"):
                signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
            self._keys = {(keys.secret_key, day): signing_key}
        return hmac.new(signing_key, text.encode(), hashlib.sha256).hexdigest()


def session_keys(session: Session) -> Callable[[], Keys]:
    """The session's current credentials (botocore refreshes role credentials before expiry)."""
    provider = session.get_credentials()
    if provider is None:
        raise NoCredentialsError()

    def keys() -> Keys:
        frozen = provider.get_frozen_credentials()
        if not frozen.access_key or not frozen.secret_key:
            raise NoCredentialsError()
        return Keys(frozen.access_key, frozen.secret_key, frozen.token)

    return keys


def make_presigner(client: S3Client, bucket: str, session: Session) -> Presigner | None:
    """A presigner for the client's endpoint; None without credentials (botocore then signs,
    and each presign answers its 503)."""
    try:
        return Presigner(client, bucket, session_keys(session))
    except BotoCoreError:
        return None
