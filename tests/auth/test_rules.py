"""Unit tests of authentication, access rules and rate-limit rules: no server, no store."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cloud_image_service.auth.access import can_access, owner_scope, resolve_owner, resolve_user
from cloud_image_service.auth.authenticator import (
    ApiKeyAuthenticator,
    Authenticator,
    check_auth_mode,
)
from cloud_image_service.auth.caller import ANONYMOUS, Caller
from cloud_image_service.auth.errors import TooManyRequests, Unauthorized
from cloud_image_service.auth.jwt_verifier import JwtVerifier
from cloud_image_service.auth.keys import ApiKeyRecord
from cloud_image_service.auth.ratelimit import (
    InMemoryRateLimiter,
    RateLimit,
    caller_key,
    parse_rate_limit,
)
from cloud_image_service.domain.errors import BadRequest, Forbidden
from tests.limiting import Clock, assert_three_per_second

SECRET = "s" * 40
ISSUER = "https://issuer.example"
AUDIENCE = "cloud-image-service"


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "alice",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": int(time.time()) + 600,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"


def rejection(verifier: JwtVerifier, token: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    return caught.value


@pytest.fixture
def hs_verifier() -> JwtVerifier:
    return JwtVerifier(secret=SECRET, issuer=ISSUER, audience=AUDIENCE)


# --- HS256 --------------------------------------------------------------------------------


def test_hs256_token_names_the_caller(hs_verifier: JwtVerifier) -> None:
    caller = hs_verifier.verify(jwt.encode(claims(), SECRET, algorithm="HS256"))
    assert caller == Caller(user_id="alice", admin=False, via="jwt")


def test_admin_scope_makes_an_admin(hs_verifier: JwtVerifier) -> None:
    token = jwt.encode(claims(scope="images:read admin"), SECRET, algorithm="HS256")
    assert hs_verifier.verify(token).admin
    token = jwt.encode(claims(scope="images:read administrator"), SECRET, algorithm="HS256")
    assert not hs_verifier.verify(token).admin


def test_admin_from_a_cognito_groups_list() -> None:
    verifier = JwtVerifier(secret=SECRET, admin_claim="cognito:groups")
    token = jwt.encode(claims(**{"cognito:groups": ["staff", "admin"]}), SECRET, algorithm="HS256")
    assert verifier.verify(token).admin
    token = jwt.encode(claims(scope="admin"), SECRET, algorithm="HS256")
    assert not verifier.verify(token).admin  # only the configured claim counts


def test_wrong_key_is_refused(hs_verifier: JwtVerifier) -> None:
    token = jwt.encode(claims(), "x" * 40, algorithm="HS256")
    error = rejection(hs_verifier, token)
    assert error.message == "token signature is invalid"
    assert error.status_code == 401


def test_alg_none_is_refused(hs_verifier: JwtVerifier) -> None:
    token = unsigned_token({"alg": "none", "typ": "JWT"}, claims()) + "."
    assert rejection(hs_verifier, token).message == "token algorithm is not accepted"


def test_wrong_audience_is_refused(hs_verifier: JwtVerifier) -> None:
    token = jwt.encode(claims(aud="someone-else"), SECRET, algorithm="HS256")
    assert rejection(hs_verifier, token).message == "token audience is not accepted"


def test_wrong_issuer_is_refused(hs_verifier: JwtVerifier) -> None:
    token = jwt.encode(claims(iss="https://evil.example"), SECRET, algorithm="HS256")
    assert rejection(hs_verifier, token).message == "token issuer is not accepted"


def test_expired_token_names_expiry(hs_verifier: JwtVerifier) -> None:
    token = jwt.encode(claims(exp=int(time.time()) - 3600), SECRET, algorithm="HS256")
    error = rejection(hs_verifier, token)
    assert error.message == "token expired"
    assert error.headers() == {
        "WWW-Authenticate": 'Bearer realm="cloud-image-service", error="invalid_token", '
        'error_description="token expired"'
    }


def test_exp_and_sub_are_required(hs_verifier: JwtVerifier) -> None:
    token = jwt.encode(claims(exp=None), SECRET, algorithm="HS256")
    assert rejection(hs_verifier, token).message == "token lacks the required 'exp' claim"
    token = jwt.encode(claims(sub=None), SECRET, algorithm="HS256")
    assert rejection(hs_verifier, token).message == "token lacks the required 'sub' claim"


def test_configured_issuer_and_audience_are_required(hs_verifier: JwtVerifier) -> None:
    token = jwt.encode(claims(aud=None), SECRET, algorithm="HS256")
    assert "'aud'" in rejection(hs_verifier, token).message
    token = jwt.encode(claims(iss=None), SECRET, algorithm="HS256")
    assert "'iss'" in rejection(hs_verifier, token).message


def test_unconfigured_audience_is_not_judged() -> None:
    verifier = JwtVerifier(secret=SECRET)
    token = jwt.encode(claims(aud="anything"), SECRET, algorithm="HS256")
    assert verifier.verify(token).user_id == "alice"


def test_garbage_and_empty_subject_are_refused(hs_verifier: JwtVerifier) -> None:
    assert rejection(hs_verifier, "not-a-token").message == "token is malformed"
    token = jwt.encode(claims(sub=""), SECRET, algorithm="HS256")
    assert rejection(hs_verifier, token).status_code == 401


def test_verifier_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        JwtVerifier()
    with pytest.raises(ValueError, match="exactly one"):
        JwtVerifier(secret=SECRET, jwks="https://example.com/jwks.json")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        JwtVerifier(secret="short")
    with pytest.raises(ValueError, match="https"):
        JwtVerifier(jwks="http://idp.example.com/jwks.json")
    with pytest.raises(ValueError, match="not a readable JWKS"):
        JwtVerifier(jwks=str(tmp_path / "missing.json"))


# --- RS256 / ES256 against a JWKS file ----------------------------------------------------


class Keys:
    """An RSA and an EC signing key, and a JWKS file holding their public halves."""

    def __init__(self, directory: Path) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        jwks = {
            "keys": [
                {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key())),
                 "kid": "rsa-1", "use": "sig", "alg": "RS256"},
                {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key())),
                 "kid": "ec-1", "use": "sig"},
            ]
        }  # fmt: skip
        self.path = directory / "jwks.json"
        self.path.write_text(json.dumps(jwks))

    def rsa_public_pem(self) -> bytes:
        return self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


@pytest.fixture
def jwks_verifier(keys: Keys) -> JwtVerifier:
    return JwtVerifier(jwks=str(keys.path), issuer=ISSUER, audience=AUDIENCE)


def test_rs256_and_es256_tokens_verify(keys: Keys, jwks_verifier: JwtVerifier) -> None:
    rs = jwt.encode(claims(), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"})
    es = jwt.encode(claims(sub="bob"), keys.ec, algorithm="ES256", headers={"kid": "ec-1"})
    assert jwks_verifier.verify(rs).user_id == "alice"
    assert jwks_verifier.verify(es).user_id == "bob"


def test_token_from_another_rsa_key_is_refused(jwks_verifier: JwtVerifier) -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), forger, algorithm="RS256", headers={"kid": "rsa-1"})
    assert rejection(jwks_verifier, token).message == "token signature is invalid"


def test_unknown_kid_is_refused(keys: Keys, jwks_verifier: JwtVerifier) -> None:
    token = jwt.encode(claims(), keys.rsa, algorithm="RS256", headers={"kid": "other"})
    assert rejection(jwks_verifier, token).message == "token is signed by an unknown key"
    token = jwt.encode(claims(), keys.rsa, algorithm="RS256")  # no kid, two keys
    assert rejection(jwks_verifier, token).message == "token is signed by an unknown key"


def test_algorithm_confusion_is_refused(keys: Keys, jwks_verifier: JwtVerifier) -> None:
    # HS256 "signed" with the public key as HMAC secret: the classic confusion attack.
    signing_input = unsigned_token({"alg": "HS256", "kid": "rsa-1"}, claims())
    mac = hmac.new(keys.rsa_public_pem(), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(mac)}"
    assert rejection(jwks_verifier, token).message == "token algorithm is not accepted"
    # And an RS256 token where the key is the EC one: the key's algorithm wins.
    token = jwt.encode(claims(), keys.rsa, algorithm="RS256", headers={"kid": "ec-1"})
    assert rejection(jwks_verifier, token).message == "token algorithm is not accepted"


def test_alg_none_is_refused_with_jwks(jwks_verifier: JwtVerifier) -> None:
    token = unsigned_token({"alg": "none", "kid": "rsa-1"}, claims()) + "."
    assert rejection(jwks_verifier, token).message == "token algorithm is not accepted"


def test_rs256_token_is_refused_by_an_hs256_verifier(keys: Keys, hs_verifier: JwtVerifier) -> None:
    token = jwt.encode(claims(), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"})
    assert rejection(hs_verifier, token).message == "token algorithm is not accepted"


def test_single_key_jwks_accepts_a_token_without_kid(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "one.json"
    path.write_text(
        json.dumps({"keys": [json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))]})
    )
    verifier = JwtVerifier(jwks=str(path))
    assert verifier.verify(jwt.encode(claims(), key, algorithm="ES256")).user_id == "alice"


# --- The mode switch ----------------------------------------------------------------------


class FakeKeys:
    def __init__(self, records: dict[str, ApiKeyRecord]) -> None:
        self.records = records

    def lookup(self, plaintext: str) -> ApiKeyRecord | None:
        record = self.records.get(plaintext)
        return None if record is None or record.revoked else record


def record(user_id: str, *, admin: bool = False, revoked: bool = False) -> ApiKeyRecord:
    return ApiKeyRecord("abcd1234", user_id, admin, datetime.now(UTC), revoked)


@pytest.fixture
def key_auth() -> Authenticator:
    store = FakeKeys(
        {"cis_good": record("bob", admin=True), "cis_old": record("eve", revoked=True)}
    )
    return Authenticator("api-key", api_keys=ApiKeyAuthenticator(store))


def test_none_mode_is_anonymous_admin() -> None:
    assert Authenticator("none").authenticate({}) == ANONYMOUS
    assert Caller(user_id=None, admin=True, via="none") == ANONYMOUS


def test_jwt_mode_reads_the_bearer_header(hs_verifier: JwtVerifier) -> None:
    auth = Authenticator("jwt", jwt_verifier=hs_verifier)
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert auth.authenticate({"authorization": f"bearer {token}"}).user_id == "alice"


def test_missing_bearer_has_a_bare_challenge(hs_verifier: JwtVerifier) -> None:
    auth = Authenticator("jwt", jwt_verifier=hs_verifier)
    for headers in ({}, {"authorization": ""}, {"authorization": "Bearer "}):
        with pytest.raises(Unauthorized) as caught:
            auth.authenticate(headers)
        assert caught.value.headers() == {"WWW-Authenticate": 'Bearer realm="cloud-image-service"'}
    with pytest.raises(Unauthorized, match="Bearer scheme"):
        auth.authenticate({"authorization": "Basic YWxpY2U6cHc="})


def test_api_key_mode(key_auth: Authenticator) -> None:
    assert key_auth.authenticate({"X-API-Key": "cis_good"}) == Caller("bob", True, "api-key")
    with pytest.raises(Unauthorized) as caught:
        key_auth.authenticate({})
    assert caught.value.headers() == {"WWW-Authenticate": 'ApiKey realm="cloud-image-service"'}
    for key in ("cis_old", "cis_unknown"):
        with pytest.raises(Unauthorized) as caught:
            key_auth.authenticate({"X-API-Key": key})
        assert caught.value.message == "API key is unknown or revoked"
        assert caught.value.headers()["WWW-Authenticate"].startswith("ApiKey realm=")


def test_authenticator_needs_its_mode_s_verifier() -> None:
    with pytest.raises(ValueError, match="JwtVerifier"):
        Authenticator("jwt")
    with pytest.raises(ValueError, match="ApiKeyAuthenticator"):
        Authenticator("api-key")


def test_none_mode_is_refused_on_aws_unless_allowed() -> None:
    check_auth_mode("none", "embedded", allow_insecure=False)
    check_auth_mode("none", "aws", allow_insecure=True)
    check_auth_mode("jwt", "aws", allow_insecure=False)
    with pytest.raises(ValueError, match="CIS_ALLOW_INSECURE=true"):
        check_auth_mode("none", "aws", allow_insecure=False)
    with pytest.raises(ValueError, match="must be one of"):
        check_auth_mode("basic", "aws", allow_insecure=False)


# --- Access rules -------------------------------------------------------------------------

ALICE = Caller("alice", admin=False, via="jwt")
ADMIN = Caller("root", admin=True, via="api-key")


def test_user_comes_from_the_credential() -> None:
    assert resolve_user(ALICE, None) == "alice"
    assert resolve_user(ALICE, "alice") == "alice"
    with pytest.raises(Forbidden):
        resolve_user(ALICE, "bob")


def test_admin_acts_for_anyone_and_lists_everyone() -> None:
    assert resolve_user(ADMIN, "bob") == "bob"
    assert resolve_user(ADMIN, None) is None


def test_none_mode_keeps_today_s_behaviour() -> None:
    assert resolve_user(ANONYMOUS, "bob") == "bob"
    assert resolve_user(ANONYMOUS, None) is None
    assert resolve_owner(ANONYMOUS, "bob") == "bob"
    with pytest.raises(BadRequest):
        resolve_owner(ANONYMOUS, None)


def test_owner_of_an_upload() -> None:
    assert resolve_owner(ALICE, None) == "alice"
    assert resolve_owner(ADMIN, None) == "root"
    assert resolve_owner(ADMIN, "bob") == "bob"
    with pytest.raises(Forbidden):
        resolve_owner(ALICE, "bob")


def test_access_to_another_user_s_image() -> None:
    assert can_access(ALICE, "alice")
    assert not can_access(ALICE, "bob")
    assert can_access(ADMIN, "bob")
    assert can_access(ANONYMOUS, "bob")
    assert owner_scope(ALICE) == "alice"
    assert owner_scope(ADMIN) is None
    assert owner_scope(ANONYMOUS) is None


# --- Rate limits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("60/minute", RateLimit(60, 60)),
        ("10/second", RateLimit(10, 1)),
        ("1000/hour", RateLimit(1000, 3600)),
        (" 5 / Minutes ", RateLimit(5, 60)),
        ("100/day", RateLimit(100, 86400)),
    ],
)
def test_rate_limit_parsing(spec: str, expected: RateLimit) -> None:
    assert parse_rate_limit(spec) == expected


@pytest.mark.parametrize("spec", [None, "", "  ", "0", "0/minute"])
def test_rate_limit_disabled(spec: str | None) -> None:
    assert parse_rate_limit(spec) is None


@pytest.mark.parametrize("spec", ["60", "60/fortnight", "-1/second", "ten/minute", "60/10s"])
def test_rate_limit_parse_errors_say_what_is_expected(spec: str) -> None:
    with pytest.raises(ValueError, match=r"expected <count>/<unit>.*60/minute"):
        parse_rate_limit(spec)


def test_rate_limit_prints_as_parsed() -> None:
    assert str(RateLimit(60, 60)) == "60/minute"


def test_in_memory_limiter_refuses_then_recovers() -> None:
    clock = Clock(1000.25)
    refused = assert_three_per_second(InMemoryRateLimiter(RateLimit(3, 1), clock), clock)
    assert "3/second" in refused.message


def test_retry_after_counts_to_the_window_end() -> None:
    clock = Clock(120.0 + 15.5)
    limiter = InMemoryRateLimiter(RateLimit(1, 60), clock)
    limiter.hit("ip:10.0.0.1")
    with pytest.raises(TooManyRequests) as caught:
        limiter.hit("ip:10.0.0.1")
    assert caught.value.retry_after == 45  # ceil(180 - 135.5)


def test_caller_key() -> None:
    assert caller_key(ALICE, "10.0.0.1") == "user:alice"
    assert caller_key(ANONYMOUS, "10.0.0.1") == "ip:10.0.0.1"
    assert caller_key(ANONYMOUS, None) == "ip:unknown"
