"""API keys as the service issues them: random, prefixed, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

KEY_PREFIX = "cis_"
KEY_ID_LENGTH = 8
# token_urlsafe(32) gives 43 characters; anything much longer is not one of ours.
_MAX_KEY_LENGTH = 128


@dataclass(frozen=True)
class ApiKeyRecord:
    """What the table knows about a key: never the key itself."""

    key_id: str
    user_id: str
    admin: bool
    created_at: datetime
    revoked: bool


def new_key() -> str:
    """A fresh key: 256 random bits, prefixed so that leaked keys are easy to grep for."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(plaintext: str) -> str:
    """SHA-256 hex of a key.

    A fast unsalted hash is enough: keys carry 256 random bits, so the hash cannot be
    brute-forced, and lookups must find a key by its hash alone.
    """
    return hashlib.sha256(plaintext.encode()).hexdigest()


def looks_like_key(plaintext: str) -> bool:
    """Whether a value could be one of our keys (no store read is spent on others)."""
    return plaintext.startswith(KEY_PREFIX) and len(plaintext) <= _MAX_KEY_LENGTH
