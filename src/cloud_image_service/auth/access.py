"""Per-user access rules: whose images a caller may list, create, see and change."""

from __future__ import annotations

from cloud_image_service.auth.caller import Caller
from cloud_image_service.domain.errors import BadRequest, Forbidden


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
