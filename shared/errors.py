"""Domain errors. Each carries its machine code and HTTP status; the mapping to the
wire happens in one place (``shared.http.api``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class StratusError(Exception):
    code = "sys_internal_error"
    status = 500
    default_message = "Internal error"

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 details: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        if code:
            self.code = code
        self.details = details or {}
        self.headers = headers or {}


class BadRequest(StratusError):
    code, status, default_message = "biz_bad_request", 400, "Malformed request"


class JsonTooDeep(BadRequest):
    code = "biz_json_too_deep"

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"Request body nests deeper than {max_depth} levels", details={"max_depth": max_depth})


class ValidationFailed(StratusError):
    code, status, default_message = "biz_validation_failed", 422, "Request validation failed"

    @classmethod
    def of(cls, errors: Iterable[Mapping[str, Any]], *, prefix: str | None = None) -> ValidationFailed:
        """422 with one ``{field, message, type}`` per pydantic error (``prefix``: where the
        validated value came from, e.g. ``body``, when the errors' locations do not say)."""
        fields = [{"field": ".".join([*([prefix] if prefix else []), *(str(part) for part in err.get("loc", ()))]),
                   "message": err.get("msg", ""), "type": err.get("type", "")} for err in errors]
        return cls(details={"fields": fields})


class Unauthenticated(StratusError):
    code, status, default_message = "auth_invalid_token", 401, "Missing or invalid credentials"


class Forbidden(StratusError):
    code, status, default_message = "auth_forbidden", 403, "Not allowed"


class NotFound(StratusError):
    code, status, default_message = "biz_not_found", 404, "Resource not found"


class MethodNotAllowed(StratusError):
    code, status, default_message = "biz_method_not_allowed", 405, "Method not allowed"


class Conflict(StratusError):
    code, status, default_message = "biz_conflict", 409, "Conflict"


class PayloadTooLarge(StratusError):
    code, status, default_message = "biz_payload_too_large", 413, "Request body too large"


class UnsupportedMediaType(StratusError):
    code, status, default_message = ("biz_unsupported_media_type", 415,
                                     "Send the body as JSON with the header content-type: application/json")

    @classmethod
    def json_expected(cls, received: str | None) -> UnsupportedMediaType:
        return cls(details={"expected_content_type": "application/json", "content_type": received})


class RateLimited(StratusError):
    code, status, default_message = "sys_rate_limited", 429, "Too many requests"


class Unavailable(StratusError):
    code, status, default_message = "sys_unavailable", 503, "Service temporarily unavailable"
