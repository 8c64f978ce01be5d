"""Logs: one JSON object per line (or text), each carrying the request id of its request.

The request id lives in a context variable set by the access-log middleware: every line
a request causes, in any module, carries it, as do the `X-Request-ID` response header and
every error body.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# What an incoming X-Request-ID may be; anything else is replaced by our own.
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def request_id_from(header: str | None) -> str:
    """The client's id when it is well formed, else a new one."""
    if header is not None and _VALID_ID.match(header):
        return header
    return uuid.uuid4().hex


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


def configure(level: str, fmt: str) -> None:
    """Root logging: `json` (one object per line) or `text`, with request ids."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # moto's werkzeug logs every request of the embedded backend: noise next to ours.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").disabled = True  # ours carries more (access.py)
