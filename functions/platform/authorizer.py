"""The HTTP API's Lambda REQUEST authorizer (payload 2.0, simple responses).

It never denies: a bad token passes through as ``auth_error`` in the context and the
shared middleware answers 401/403 in the envelope (docs/architecture.md §2.3). Answers are cacheable by
the Authorization header.
"""

from __future__ import annotations

from typing import Any

from shared.auth.guard import NOT_BEARER
from shared.auth.tokens import bearer_token
from shared.errors import StratusError, Unauthenticated
from shared.handler import powertools_handler
from shared.tenancy.service import tenancy_service


def _authorize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = bearer_token(event.get("headers"))
    if token is None:
        return {"isAuthorized": True, "context": {"auth_error": "auth_missing_token"}}
    if not token:
        return {"isAuthorized": True, "context": {"auth_error": NOT_BEARER}}
    try:
        principal = tenancy_service().resolve_token(token)
    except Unauthenticated as exc:
        return {"isAuthorized": True, "context": {"auth_error": exc.code}}
    except StratusError:
        # Database unavailable and the like: let the client retry rather than cache a denial.
        raise
    return {"isAuthorized": True, "context": principal.to_context()}


handler = powertools_handler(_authorize)
