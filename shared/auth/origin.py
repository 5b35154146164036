"""The edge's origin header (docs/adr/0047-concurrency-budget-and-side-doors.md).

CloudFront adds ``x-stratus-origin-verify: <secret>`` to every request it forwards, to the HTTP
API and to the function URLs alike. The authorizer (an identity source of the HTTP API), the
HTTP middleware and the streaming apps refuse a request without it before any other work, so
the execute-api endpoint and the function URLs (AuthType NONE) are no way around the edge.

In AWS the secret's ARN is a required setting of every edge-facing function (checked at cold
start, shared/config.py); the local runtime has no edge and sets none, so nothing is enforced
there.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

from shared.errors import Forbidden

ORIGIN_HEADER = "x-stratus-origin-verify"
ORIGIN_FORBIDDEN = "auth_origin_forbidden"


def expected_origin_secret() -> tuple[str, ...] | None:
    """The values this deployment's edge may send: the secret's current value and, during a
    rotation (README, "Rotating the origin secret"), its previous one until that is retired;
    None where there is no edge (local runtime)."""
    from shared.config import get_settings

    settings = get_settings()
    if settings.origin_secret is not None:
        return (settings.origin_secret.get_secret_value(),)
    if settings.origin_secret_arn:
        from shared.aws.secrets import get_previous_secret_string, get_secret_string

        # Through the extension and the container's secret cache: no network call per request.
        current = get_secret_string(settings.origin_secret_arn)
        previous = get_previous_secret_string(settings.origin_secret_arn)
        return (current,) if previous is None or previous == current else (current, previous)
    return None


def origin_header(headers: Mapping[str, str] | None) -> str | None:
    for name, value in (headers or {}).items():
        if name.lower() == ORIGIN_HEADER:
            return value
    return None


def from_edge(headers: Mapping[str, str] | None, expected: str | Sequence[str] | None) -> bool:
    """Whether the request came through the edge: its origin header is one of the expected
    values (constant-time comparisons, every value compared), or there is nothing to compare
    with (no edge: the local runtime)."""
    if expected is None:
        return True
    given = origin_header(headers)
    if given is None:
        return False
    values = (expected,) if isinstance(expected, str) else tuple(expected)
    matches = [hmac.compare_digest(given.encode(), value.encode()) for value in values if value]
    return any(matches)


def require_edge(headers: Mapping[str, str] | None) -> None:
    """Refuse (403) a request that did not come through CloudFront."""
    if not from_edge(headers, expected_origin_secret()):
        raise Forbidden("Requests must come through the API's base URL", code=ORIGIN_FORBIDDEN)
