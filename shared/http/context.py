"""Per-invocation request state. Context variables, not module globals: the local runtime
invokes handlers from several threads."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from shared.auth.principal import Principal
from shared.errors import Unauthenticated

_principal: ContextVar[Principal | None] = ContextVar("principal", default=None)
_request_id: ContextVar[str] = ContextVar("request_id", default="")
# Headers every answer of this request carries (rate limit state, quota warnings).
_response_headers: ContextVar[dict[str, str] | None] = ContextVar("response_headers", default=None)


def new_request_id() -> str:
    """A request id in API Gateway's HTTP API shape (12 random bytes, 16 base64 characters):
    the one shape every answer's ``X-Request-Id`` has, whichever function answers."""
    return base64.b64encode(secrets.token_bytes(12)).decode()


def _in_platform_shape(found: str) -> str:
    # A function URL's request context carries Lambda's UUID where API Gateway's carries its
    # own shape; re-encode it (its first 12 bytes, 90 of them random) so clients see one shape.
    try:
        value = uuid.UUID(found)
    except ValueError:
        return found
    return base64.b64encode(value.bytes[:12]).decode()


def request_id_from(request_context: Mapping[str, Any] | None) -> str:
    """The one request-id scheme: Lambda's request context's ``requestId`` (API Gateway's in an
    HTTP API event; a function URL's, which the Web Adapter forwards), else a new id."""
    found = (request_context or {}).get("requestId")
    return _in_platform_shape(str(found)) if found else new_request_id()


def request_id_of(event: Mapping[str, Any]) -> str:
    """The id of an API Gateway (or function URL) event."""
    return request_id_from(event.get("requestContext"))


def request_id_of_headers(headers: Mapping[bytes, bytes]) -> str:
    """The id of a request the Web Adapter forwarded: it carries the event's request context
    in ``x-amzn-request-context`` (absent locally: a new id)."""
    raw = headers.get(b"x-amzn-request-context")
    try:
        context = json.loads(raw) if raw else None
    except ValueError:
        context = None
    return request_id_from(context if isinstance(context, dict) else None)


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
