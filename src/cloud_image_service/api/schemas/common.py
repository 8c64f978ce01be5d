"""Bodies shared by every route: errors, confirmations, probes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    """A plain confirmation."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"message": "Image deleted successfully"}]}
    )

    message: str = Field(description="What was done.")


class ErrorBody(BaseModel):
    """Every error: a stable code and a message naming the problem (`detail` repeats it)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "image_not_found",
                    "message": "image '9b1c0a4e-8f1f-4c4e-9d55-0d6c2f7e4a10' not found",
                    "detail": "image '9b1c0a4e-8f1f-4c4e-9d55-0d6c2f7e4a10' not found",
                    "request_id": "5f2c1e9a0b7d4c3e8f6a1b2c3d4e5f60",
                }
            ]
        }
    )

    code: str = Field(
        description="Stable machine-readable code, e.g. `image_not_found`, `invalid_request`, "
        "`backend_unavailable`, `verification_in_progress`."
    )
    message: str = Field(description="What is wrong, naming the field or the store.")
    detail: str = Field(description="The same as `message`, for clients of FastAPI's default.")
    request_id: str | None = Field(
        default=None,
        description="This request's id, also in the `X-Request-ID` header and in every log "
        "line it caused: quote it when reporting a problem.",
    )


class Health(BaseModel):
    """The process is alive."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"] = Field(description="Always `ok`: the process answers.")


class Readiness(BaseModel):
    """State of each store: 'ok' or what failed."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "checks": {"s3": "ok", "dynamodb": "ok"}}]}
    )

    status: Literal["ok", "unavailable"] = Field(description="`ok` when every store answers.")
    checks: dict[str, str] = Field(
        description="Per store (`s3`, `dynamodb`): `ok`, or why it failed or was too slow."
    )
