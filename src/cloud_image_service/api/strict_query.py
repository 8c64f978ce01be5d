"""Unknown query parameters are a 422 that names them, not silently ignored.

A client written for another API that sends `start_date` would otherwise get an
unfiltered list and believe it filtered.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


_ALLOWED: dict[int, frozenset[str]] = {}  # by id(route): routes live as long as the app


def _allowed(route: APIRoute) -> frozenset[str]:
    allowed = _ALLOWED.get(id(route))
    if allowed is None:
        allowed = _ALLOWED[id(route)] = frozenset(_query_names(route.dependant))
    return allowed


async def reject_unknown_query(request: Request) -> None:
    """Dependency: 422 for any query parameter the route does not declare (no I/O: async)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    unknown = sorted(set(request.query_params.keys()) - _allowed(route))
    if unknown:
        allowed = ", ".join(sorted(_allowed(route))) or "none"
        message = f"unknown query parameter (this route takes: {allowed})"
        raise RequestValidationError(
            [
                {"loc": ("query", name), "msg": message, "type": "extra_forbidden"}
                for name in unknown
            ]
        )
