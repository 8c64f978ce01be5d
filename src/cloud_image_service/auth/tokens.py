"""Development tokens: HS256 JWTs signed with CIS_JWT_SECRET, for local use and tests."""

from __future__ import annotations

import time

import jwt

from cloud_image_service.config import Settings


def mint_token(settings: Settings, user_id: str, admin: bool = False, ttl: int = 3600) -> str:
    """A token the service accepts in `jwt` mode with a shared secret."""
    if settings.jwt_secret is None:
        raise ValueError("CIS_JWT_SECRET is not set: development tokens are HS256 only")
    now = int(time.time())
    claims: dict[str, object] = {"sub": user_id, "iat": now, "exp": now + ttl}
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if admin:
        claims[settings.jwt_admin_claim] = settings.jwt_admin_value
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
