"""The OpenAPI 3.1 document, generated from the function catalog and each handler's
pydantic models (Powertools builds each route's part; this merges them)."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from functions.catalog import http_functions

_ERROR_STATUSES = {
    "400": "Malformed request body",
    "401": "Missing, invalid, expired or revoked token",
    "403": "Authenticated but not allowed",
    "404": "Not found, or owned by another tenant",
    "409": "Conflict (duplicate, stale version, last owner)",
    "413": "Request body too large",
    "422": "Validation failed (field-level details)",
    "429": "Rate limited (see Retry-After)",
    "500": "Internal error",
}


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["code", "message", "details", "request_id"],
        "properties": {
            "code": {"type": "string", "examples": ["member_not_found", "auth_invalid_token"]},
            "message": {"type": "string"},
            "details": {"type": "object"},
            "request_id": {"type": "string"},
        },
    }


@cache
def build_openapi() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"ErrorEnvelope": _error_schema()}
    error_ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
    for fn in http_functions():
        module = importlib.import_module(fn.module)
        app = module.app
        part = app.resolver.get_openapi_schema(title="part", version="0").model_dump(
            mode="json", by_alias=True, exclude_none=True)
        schemas.update((part.get("components") or {}).get("schemas") or {})
        for path, operations in (part.get("paths") or {}).items():
            for method, operation in operations.items():
                operation.setdefault("description", fn.description or fn.trigger.summary)  # type: ignore[union-attr]
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for status, text in _ERROR_STATUSES.items():
                    responses.setdefault(status, {"description": text, **error_ref})
                if app.route.auth:
                    operation["security"] = [{"bearerAuth": []}]
                    operation["x-stratus-permission"] = app.route.permission
                else:
                    operation["security"] = []
                paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Stratus API",
            "version": "1",
            "description": "Serverless LLM application platform: agents, knowledge bases and workflows.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "Access token (pat_...)"}},
        },
    }
