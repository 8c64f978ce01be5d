"""Who is calling: JWT and API-key authentication, by the configured mode.

Modes (`CIS_AUTH_MODE`):
- `none`: no credential; the caller is `ANONYMOUS`, which may act as any user_id the
  request names (the behaviour before authentication existed). Development only.
- `jwt`: `Authorization: Bearer <token>`, verified with PyJWT; the user is `sub`.
- `api-key`: `X-API-Key: cis_...`, looked up by hash in the key table (adapters/keys_table.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from cloud_image_service.auth.caller import ANONYMOUS, AUTH_MODES, AuthMode, Caller
from cloud_image_service.auth.errors import Unauthorized
from cloud_image_service.auth.jwt_verifier import JwtVerifier
from cloud_image_service.auth.keys import ApiKeyRecord

API_KEY_HEADER = "X-API-Key"


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
        # API keys are looked up in DynamoDB, a JWKS URL is fetched: those calls block.
        self.may_block = mode == "api-key" or (
            jwt_verifier is not None and mode == "jwt" and jwt_verifier.fetches_keys
        )

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
