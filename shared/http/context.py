"""Per-invocation request state. Context variables, not module globals: the local runtime
invokes handlers from several threads."""

from __future__ import annotations

from contextvars import ContextVar

from shared.auth.principal import Principal
from shared.errors import Unauthenticated

_principal: ContextVar[Principal | None] = ContextVar("principal", default=None)
_request_id: ContextVar[str] = ContextVar("request_id", default="")


def set_request(principal: Principal | None, request_id: str) -> None:
    _principal.set(principal)
    _request_id.set(request_id)


def current_principal() -> Principal:
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated()
    return principal


def current_request_id() -> str:
    return _request_id.get()
