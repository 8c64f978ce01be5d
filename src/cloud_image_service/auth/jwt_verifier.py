"""JWT verification with PyJWT: HS256 with a shared secret, or RS256/ES256 from a JWKS."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jwt

from cloud_image_service.auth.caller import Caller
from cloud_image_service.auth.errors import Unauthorized
from cloud_image_service.domain.errors import BackendUnavailable

JWKS_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256")
_MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash
_MAX_TOKEN_LENGTH = 16 * 1024
_MAX_SUBJECT_LENGTH = 256
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


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

    @property
    def fetches_keys(self) -> bool:
        """True when keys come from a JWKS URL (a verification may wait on the network)."""
        return self._jwks_client is not None

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
