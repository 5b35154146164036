"""The HTTP API's Lambda REQUEST authorizer (payload 2.0, simple responses).

It never denies a token: a bad token passes through as ``auth_error`` in the context and the
shared middleware answers 401/403 in the envelope (docs/architecture.md §2.3). Answers are cacheable by
the Authorization header. A request without the edge's origin header is denied (403) before
any token work (docs/adr/0047-concurrency-budget-and-side-doors.md).
"""

from __future__ import annotations

from typing import Any

from shared.auth.guard import NOT_BEARER
from shared.auth.origin import expected_origin_secret, from_edge
from shared.auth.tokens import bearer_token
from shared.errors import StratusError, Unauthenticated
from shared.handler import powertools_handler
from shared.tenancy.service import tenancy_service


def _authorize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # The one denial: a request that did not come through CloudFront (its origin header is an
    # identity source too, so API Gateway caches this per header value, never for the edge's).
    if not from_edge(event.get("headers"), expected_origin_secret()):
        return {"isAuthorized": False}
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
