"""Who is calling: JWT and API-key authentication, and the per-user access rules.

Modes (`CIS_AUTH_MODE`):
- `none`: no credential; the caller is `ANONYMOUS`, which may act as any user_id the
  request names (the behaviour before authentication existed). Development only.
- `jwt`: `Authorization: Bearer <token>`, verified with PyJWT; the user is `sub`.
- `api-key`: `X-API-Key: cis_...`, looked up by hash in the key table (apikeys.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, get_args
from urllib.parse import urlparse

import jwt
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from cloud_image_service.apikeys import ApiKeyRecord
from cloud_image_service.auth_errors import Unauthorized
from cloud_image_service.errors import BackendUnavailable, BadRequest, Forbidden

AuthMode = Literal["none", "jwt", "api-key"]
AUTH_MODES: tuple[str, ...] = get_args(AuthMode)
API_KEY_HEADER = "X-API-Key"
JWKS_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256")
_MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash
_MAX_TOKEN_LENGTH = 16 * 1024
_MAX_SUBJECT_LENGTH = 256
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of a request.

    `user_id` is None only in mode `none`, where the caller is anonymous and acts as
    whichever user the request names (`admin` is then True).
    """

    user_id: str | None
    admin: bool
    via: AuthMode


ANONYMOUS = Caller(user_id=None, admin=True, via="none")


def check_auth_mode(mode: str, backend: str, allow_insecure: bool) -> None:
    """Raise ValueError, saying why, for a mode that must not serve this backend."""
    if mode not in AUTH_MODES:
        raise ValueError(f"CIS_AUTH_MODE must be one of {', '.join(AUTH_MODES)} (got {mode!r})")
    if mode == "none" and backend != "embedded" and not allow_insecure:
        raise ValueError(
            "CIS_AUTH_MODE=none lets any caller read, download and delete every user's "
            "images; it is refused with CIS_BACKEND=aws. Set CIS_AUTH_MODE=jwt or api-key, "
            "or CIS_ALLOW_INSECURE=true to accept this on purpose."
        )


# --- JWT ----------------------------------------------------------------------------------


def _jwt_error_message(exc: jwt.PyJWTError) -> str:
    """A short reason safe to return to the client (no key material, no claims)."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "token is not valid yet"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token lacks the required {exc.claim!r} claim"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "token audience is not accepted"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "token issuer is not accepted"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "token algorithm is not accepted"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "token signature is invalid"
    if isinstance(exc, jwt.DecodeError):
        return "token is malformed"
    return "token is invalid"


def _claim_values(value: object) -> set[str]:
    """`scope` is one space-separated string; `cognito:groups` and `scp` are lists."""
    if isinstance(value, str):
        return set(value.split())
    if isinstance(value, list):
        return {item for item in value if isinstance(item, str)}
    return set()


def _is_url(source: str) -> bool:
    return source.startswith(("https://", "http://"))


class JwtVerifier:
    """Verifies bearer tokens: HS256 with a shared secret, or RS256/ES256 against a JWKS.

    The algorithms list is always explicit, so `alg: none` and HS256-with-a-public-key
    (algorithm confusion) are refused; `exp` and `sub` are always required.
    """

    def __init__(
        self,
        *,
        secret: str | None = None,
        jwks: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        admin_claim: str = "scope",
        admin_value: str = "admin",
        leeway_seconds: float = 30.0,
        jwks_timeout: float = 5.0,
    ) -> None:
        if (secret is None) == (jwks is None):
            raise ValueError("JWT mode needs exactly one of CIS_JWT_SECRET and CIS_JWT_JWKS")
        self.issuer = issuer
        self.audience = audience
        self.admin_claim = admin_claim
        self.admin_value = admin_value
        self.leeway = leeway_seconds
        self._secret: bytes | None = None
        self._jwks_client: jwt.PyJWKClient | None = None
        self._jwks_keys: list[jwt.PyJWK] = []
        if secret is not None:
            if len(secret.encode()) < _MIN_SECRET_BYTES:
                raise ValueError(f"CIS_JWT_SECRET must be at least {_MIN_SECRET_BYTES} bytes")
            self._secret = secret.encode()
            self.algorithms: tuple[str, ...] = ("HS256",)
        elif jwks is not None and _is_url(jwks):
            self._jwks_client = _jwks_client(jwks, jwks_timeout)
            self.algorithms = JWKS_ALGORITHMS
        elif jwks is not None:
            self._jwks_keys = _load_jwks_file(Path(jwks))
            self.algorithms = JWKS_ALGORITHMS

    def verify(self, token: str) -> Caller:
        """The caller a valid token names; Unauthorized saying what is wrong otherwise."""
        if len(token) > _MAX_TOKEN_LENGTH:
            raise Unauthorized("token is too long")
        required = ["exp", "sub"]
        required += ["iss"] if self.issuer else []
        required += ["aud"] if self.audience else []
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=self._key_for(token),
                algorithms=list(self.algorithms),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                # Without a configured audience, `aud` is not ours to judge.
                options={"require": required, "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(_jwt_error_message(exc)) from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= _MAX_SUBJECT_LENGTH:
            raise Unauthorized("token subject is not a usable user id")
        admin = self.admin_value in _claim_values(claims.get(self.admin_claim))
        return Caller(user_id=subject, admin=admin, via="jwt")

    def _key_for(self, token: str) -> jwt.PyJWK | bytes:
        """The verification key the token's header selects."""
        if self._secret is not None:
            return self._secret
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(_jwt_error_message(exc)) from exc
        kid = header.get("kid")
        key = self._fetched_key(kid) if self._jwks_client is not None else self._local_key(kid)
        # Each JWK is bound to one algorithm: a token claiming another is refused here,
        # whatever the installed PyJWT does with a mismatch.
        if header.get("alg") != key.algorithm_name:
            raise Unauthorized("token algorithm is not accepted")
        return key

    def _fetched_key(self, kid: object) -> jwt.PyJWK:
        assert self._jwks_client is not None
        if not isinstance(kid, str):
            raise Unauthorized("token has no key id (kid)")
        try:
            return self._jwks_client.get_signing_key(kid)
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError) as exc:
            # The identity provider is unreachable or serves no keys: not the caller's fault.
            raise BackendUnavailable("JWKS", type(exc).__name__) from exc
        except jwt.PyJWKClientError as exc:
            raise Unauthorized("token is signed by an unknown key") from exc

    def _local_key(self, kid: object) -> jwt.PyJWK:
        if kid is None and len(self._jwks_keys) == 1:
            return self._jwks_keys[0]
        for key in self._jwks_keys:
            if key.key_id == kid:
                return key
        raise Unauthorized("token is signed by an unknown key")


def _jwks_client(url: str, timeout: float) -> jwt.PyJWKClient:
    host = urlparse(url).hostname or ""
    if url.startswith("http://") and host not in _LOOPBACK:
        raise ValueError(f"CIS_JWT_JWKS must be an https URL (got {url!r})")
    # Keys are cached for 5 minutes; an unknown kid refetches (key rotation).
    return jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=300, timeout=timeout)


def _load_jwks_file(path: Path) -> list[jwt.PyJWK]:
    """The signing keys of a JWKS file whose algorithm we accept."""
    try:
        keys = jwt.PyJWKSet.from_json(path.read_text()).keys
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise ValueError(f"CIS_JWT_JWKS {str(path)!r} is not a readable JWKS: {exc}") from exc
    usable = [
        key
        for key in keys
        if key.algorithm_name in JWKS_ALGORITHMS and key.public_key_use in ("sig", None)
    ]
    if not usable:
        raise ValueError(
            f"CIS_JWT_JWKS {str(path)!r} has no signing key for {', '.join(JWKS_ALGORITHMS)}"
        )
    return usable


# --- API keys -----------------------------------------------------------------------------


class KeyLookup(Protocol):
    """What authentication needs of the key store."""

    def lookup(self, plaintext: str) -> ApiKeyRecord | None: ...


class ApiKeyAuthenticator:
    """Turns an `X-API-Key` value into the caller it was issued to."""

    def __init__(self, store: KeyLookup) -> None:
        self.store = store

    def verify(self, plaintext: str) -> Caller:
        """The key's caller; Unauthorized for unknown, malformed or revoked keys."""
        record = self.store.lookup(plaintext)
        if record is None:
            raise Unauthorized(
                "API key is unknown or revoked", scheme="ApiKey", error="invalid_key"
            )
        return Caller(user_id=record.user_id, admin=record.admin, via="api-key")


# --- The mode switch ----------------------------------------------------------------------


class Authenticator:
    """Authenticates a request's headers according to the configured mode."""

    def __init__(
        self,
        mode: AuthMode,
        jwt_verifier: JwtVerifier | None = None,
        api_keys: ApiKeyAuthenticator | None = None,
    ) -> None:
        if mode == "jwt" and jwt_verifier is None:
            raise ValueError("CIS_AUTH_MODE=jwt needs a JwtVerifier")
        if mode == "api-key" and api_keys is None:
            raise ValueError("CIS_AUTH_MODE=api-key needs an ApiKeyAuthenticator")
        self.mode = mode
        self.jwt_verifier = jwt_verifier
        self.api_keys = api_keys

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        """The caller; Unauthorized when credentials are missing or bad."""
        if self.mode == "jwt":
            assert self.jwt_verifier is not None
            return self.jwt_verifier.verify(_bearer_token(_header(headers, "Authorization")))
        if self.mode == "api-key":
            assert self.api_keys is not None
            key = (_header(headers, API_KEY_HEADER) or "").strip()
            if not key:
                raise Unauthorized(f"missing {API_KEY_HEADER} header", scheme="ApiKey", error=None)
            return self.api_keys.verify(key)
        return ANONYMOUS


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name, from Starlette's headers or a plain dict."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value


def _bearer_token(authorization: str | None) -> str:
    if not authorization or not authorization.strip():
        raise Unauthorized("missing bearer token", error=None)
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("Authorization must use the Bearer scheme", error="invalid_request")
    if not token.strip():
        raise Unauthorized("missing bearer token", error=None)
    return token.strip()


# --- Access rules -------------------------------------------------------------------------


def resolve_user(caller: Caller, requested: str | None) -> str | None:
    """The user a request acts for; None means every user (admins listing).

    With authentication on, the user comes from the credential: a different requested
    user is 403 unless the caller is admin. In mode `none` the request decides.
    """
    if requested is None:
        return None if caller.admin else caller.user_id
    if requested != caller.user_id and not caller.admin:
        raise Forbidden("user_id must be your own user")
    return requested


def resolve_owner(caller: Caller, requested: str | None) -> str:
    """The owner of a new image: the requested user if allowed, else the caller."""
    owner = resolve_user(caller, requested) or caller.user_id
    if owner is None:  # mode `none`: nobody to default to
        raise BadRequest("user_id is required when authentication is off")
    return owner


def owner_scope(caller: Caller) -> str | None:
    """The only owner whose images the caller may touch; None means any (admins, mode none)."""
    return None if caller.admin else caller.user_id


def can_access(caller: Caller, owner: str) -> bool:
    """Whether the caller may see or change an image of `owner`.

    A False must become the same 404 as a missing image, so ids cannot be probed.
    """
    return caller.admin or caller.user_id == owner


# --- FastAPI ------------------------------------------------------------------------------

# Declared on every protected route so the OpenAPI document lists both schemes and
# Swagger UI's Authorize button works; auto_error=False because the Authenticator,
# not FastAPI, decides which one the configured mode needs.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="JWT access token (CIS_AUTH_MODE=jwt).",
)
api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="ApiKey",
    description="API key from `cloud-image-service keys create` (CIS_AUTH_MODE=api-key).",
)


def caller_dependency(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    _api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Caller:
    """Dependency: the authenticated caller, via `app.state.authenticator`.

    Sync on purpose: an API-key lookup or a JWKS fetch blocks, so FastAPI runs it on
    the thread pool.
    """
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.authenticate(request.headers)
