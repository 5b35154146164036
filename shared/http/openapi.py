"""The OpenAPI 3.1 document, generated from the function catalog and each handler's
pydantic models (Powertools builds each route's part; this merges them). The routes of the
streaming functions (function URLs, ``StreamRoute``) are documented from the catalog alone."""

from __future__ import annotations

import importlib
import re
from functools import cache
from typing import Any

from functions.catalog import Function, FunctionUrl, StreamRoute, http_functions, streaming_functions

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


_ERROR_REF = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
_SUCCESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "data", "meta"],
    "properties": {"code": {"const": "success"}, "data": {}, "meta": {"type": "object"}},
}
EVENT_STREAM = "text/event-stream"
_EVENT_STREAM_DESCRIPTION = (
    "Server-sent events: `event: <type>`, `id: <event id>`, `data: <json>`, separated by a blank line; a "
    "heartbeat comment at least every 15 s. Resume after a disconnect with the `Last-Event-ID` header.")
_PATH_PARAMETER = re.compile(r"{([^}]+)}")


def streams(fn: Function, route: StreamRoute) -> bool:
    """Whether a streaming function's route answers with an event stream (the catalog says);
    actions like ``POST …/cancel`` answer JSON."""
    assert isinstance(fn.trigger, FunctionUrl)
    return route.streams


def _stream_operation_id(fn: Function, route: StreamRoute, taken: set[str]) -> str:
    """``chat``, ``chat-events``, ``chat-cancel``: the function's name and the route's literal
    segments below its prefix (plus the method when that is ambiguous)."""
    assert isinstance(fn.trigger, FunctionUrl)
    prefix = next(p for p in fn.trigger.path_prefixes if route.path == p or route.path.startswith(p + "/"))
    literal = [seg for seg in route.path[len(prefix):].split("/") if seg and not seg.startswith("{")]
    operation_id = "-".join([fn.name, *literal])
    if operation_id in taken:
        operation_id += f"-{route.method.lower()}"
    taken.add(operation_id)
    return operation_id


def _stream_operation(fn: Function, route: StreamRoute, operation_id: str) -> dict[str, Any]:
    assert isinstance(fn.trigger, FunctionUrl)
    starts = route.path in fn.trigger.path_prefixes
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(route.path)]
    follows = route.method.upper() == "GET"
    success: dict[str, Any] = {}
    if streams(fn, route):
        success[EVENT_STREAM] = {"schema": {"type": "string"}}
    if follows:
        parameters.append({"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"},
                           "description": "Replay the events after this one, then follow live"})
    else:
        # Starting the work may answer the final result instead; an action answers its envelope.
        success["application/json"] = {"schema": _SUCCESS_SCHEMA}
    # A streamed answer starts with 200; an action's envelope may be 200 or 202 (accepted),
    # which the catalog does not say.
    ok = {"200": {"description": _EVENT_STREAM_DESCRIPTION, "content": success}} if EVENT_STREAM in success else {
        "2XX": {"description": "The success envelope", "content": success}}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": route.summary,
        "description": fn.description or route.summary,
        "parameters": parameters,
        "responses": {**ok,
                      **{status: {"description": text, **_ERROR_REF} for status, text in _ERROR_STATUSES.items()}},
        "security": [{"bearerAuth": []}],
        "x-stratus-permission": route.permission,
        # Served by a Lambda function URL behind the edge (CloudFront), not by API Gateway.
        "x-stratus-streaming": True,
    }
    if route.tag:
        operation["tags"] = [route.tag]
    if starts and route.method.upper() != "GET":
        # The request that starts the work carries a JSON body (its schema is the app's).
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
    return operation


def streaming_paths() -> dict[str, dict[str, Any]]:
    """The operations of the streaming functions' routes, path → method → operation."""
    paths: dict[str, dict[str, Any]] = {}
    taken: set[str] = set()
    for fn in streaming_functions():
        assert isinstance(fn.trigger, FunctionUrl)
        for route in fn.trigger.routes:
            operation = _stream_operation(fn, route, _stream_operation_id(fn, route, taken))
            paths.setdefault(route.path, {})[route.method.lower()] = operation
    return paths


@cache
def build_openapi() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"ErrorEnvelope": _error_schema()}
    error_ref = _ERROR_REF
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
    for path, operations in streaming_paths().items():
        for method, operation in operations.items():
            if method in paths.get(path, {}):
                raise ValueError(f"{method.upper()} {path} is both an HTTP API route and a streaming route")
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
