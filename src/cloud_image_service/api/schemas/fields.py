"""Field types shared by request bodies: what a user id, a tag or a file name may be."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from cloud_image_service.config import USER_ID_PATTERN
from cloud_image_service.domain.formats import ACCEPTED_TYPES, canonical_type

MAX_TAGS = 20

UserId = Annotated[
    str,
    StringConstraints(pattern=USER_ID_PATTERN),
    Field(description="1-128 characters of A-Z a-z 0-9 . _ @ -", examples=["alice@example.com"]),
]


def _check_content_type(value: str) -> str:
    normalized = canonical_type(value)
    if normalized is None:
        raise ValueError(f"must be one of {', '.join(ACCEPTED_TYPES)} (got {value!r})")
    return normalized


def _no_control_characters(value: str) -> str:
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise ValueError("must not contain control characters")
    return value


def check_tags(tags: list[str]) -> list[str]:
    """Duplicates are dropped (tags are a set) while keeping the client's order."""
    return list(dict.fromkeys(tags))


def _basename(value: str) -> str:
    # The name only ever goes into Content-Disposition; path parts mean nothing there.
    name = value.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name:
        raise ValueError("must name a file, not a folder")
    return name


ContentType = Annotated[
    str,
    AfterValidator(_check_content_type),
    Field(
        description="The image's type: one of " + ", ".join(ACCEPTED_TYPES) + " (`image/jpg` "
        "is accepted as `image/jpeg`). S3 refuses an upload of another type.",
        examples=["image/png"],
        json_schema_extra={"enum": list(ACCEPTED_TYPES)},
    ),
]
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_no_control_characters),
]
Filename = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    AfterValidator(_no_control_characters),
    AfterValidator(_basename),
]
