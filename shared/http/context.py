"""Per-invocation request state. Context variables, not module globals: the local runtime
invokes handlers from several threads."""

from __future__ import annotations

from contextvars import ContextVar

from shared.auth.principal import Principal
from shared.errors import Unauthenticated

_principal: ContextVar[Principal | None] = ContextVar("principal", default=None)
_request_id: ContextVar[str] = ContextVar("request_id", default="")
# Headers every answer of this request carries (rate limit state, quota warnings).
_response_headers: ContextVar[dict[str, str] | None] = ContextVar("response_headers", default=None)


def set_request(principal: Principal | None, request_id: str) -> None:
    _principal.set(principal)
    _request_id.set(request_id)
    _response_headers.set({})


def add_response_headers(headers: dict[str, str]) -> None:
    current = _response_headers.get()
    if current is None:
        current = {}
        _response_headers.set(current)
    current.update(headers)


def response_headers() -> dict[str, str]:
    return dict(_response_headers.get() or {})


def current_principal() -> Principal:
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated()
    return principal


def current_request_id() -> str:
    return _request_id.get()
