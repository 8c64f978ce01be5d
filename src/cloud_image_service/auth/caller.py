"""The authenticated principal of a request, shared by every authentication mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

AuthMode = Literal["none", "jwt", "api-key"]
AUTH_MODES: tuple[str, ...] = get_args(AuthMode)


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
