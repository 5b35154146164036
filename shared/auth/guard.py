"""The shared auth middleware: every HTTP handler runs it before anything else.

The authorizer never denies; it hands a principal or an ``auth_error`` code through its
context. Here that becomes 401/403 in the envelope, with revocation and role changes read
from Redis so they apply at once despite API Gateway's authorizer cache.
"""

from __future__ import annotations

from typing import Any

from shared.auth.permissions import require
from shared.auth.principal import Principal
from shared.auth.token_state import TokenStateStore
from shared.errors import Unauthenticated

AUTH_ERROR_MESSAGES: dict[str, str] = {
    "auth_missing_token": "Authorization header with a Bearer token is required",
    "auth_invalid_token": "The token is not valid",
    "auth_token_expired": "The token has expired",
    "auth_token_revoked": "The token has been revoked",
}


# An Authorization header that is not ``Bearer <token>`` (a bare token, Basic, …): an invalid
# token on the wire, with a message that says what to send instead.
NOT_BEARER = "auth_not_bearer"
EXPECTED_AUTHORIZATION = "Authorization: Bearer <token>"


def auth_error(code: str) -> Unauthenticated:
    """The 401 for an auth error code (any code not listed here reads as an invalid token)."""
    if code == NOT_BEARER:
        return Unauthenticated(f"The Authorization header must read '{EXPECTED_AUTHORIZATION}' (the 'Bearer ' "
                               "prefix, then the token)", code="auth_invalid_token",
                               details={"expected": EXPECTED_AUTHORIZATION})
    code = code if code in AUTH_ERROR_MESSAGES else "auth_invalid_token"
    return Unauthenticated(AUTH_ERROR_MESSAGES[code], code=code)


def authorizer_context(event: dict[str, Any]) -> dict[str, Any]:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    return authorizer.get("lambda") or {}


def authenticate(event: dict[str, Any], token_state: TokenStateStore) -> Principal:
    ctx = authorizer_context(event)
    error = ctx.get("auth_error") or ("" if ctx.get("token_id") else "auth_missing_token")
    if error:
        raise auth_error(error)
    principal = Principal.from_context(ctx)
    # The authorizer's answer may be cached past the token's expiry.
    if principal.is_expired():
        raise auth_error("auth_token_expired")
    return token_state.apply(principal)


def guard(event: dict[str, Any], permission: str | None, token_state: TokenStateStore) -> Principal:
    principal = authenticate(event, token_state)
    if permission is not None:
        require(principal, permission)
    return principal
