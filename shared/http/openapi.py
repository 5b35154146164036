"""The OpenAPI 3.1 document, generated from the function catalog handed in and each handler's
pydantic models (Powertools builds each HTTP route's part; this merges them). The routes of
the streaming functions (function URLs, ``StreamRoute``) are documented from their catalog
declaration alone: body, query and answer models, the event types with their data, the
heartbeat; every answer in the route's dialect."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.catalog import Function, FunctionUrl, Http, StreamRoute
from shared.http.dialect import EVENT_STREAM, Dialect, EventDoc, dialect_for
from shared.http.refs import model_of

__all__ = ["EVENT_STREAM", "build_openapi", "streaming_paths"]

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
_REF = "#/components/schemas/{model}"
_EVENT_STREAM_DESCRIPTION = (
    "Server-sent events: `event: <type>`, `id: <event id>`, `data: <json>`, separated by a blank line; a "
    "heartbeat event when nothing else was sent for the heartbeat interval (at most 15 s). Resume after a "
    "disconnect with the `Last-Event-ID` header.")
_PATH_PARAMETER = re.compile(r"{([^}]+)}")
Mode = Literal["validation", "serialization"]


def _error_responses(dialect: Dialect) -> dict[str, Any]:
    name, _ = dialect.error_schema()
    content = {"content": {"application/json": {"schema": {"$ref": _REF.format(model=name)}}}}
    return {status: {"description": text, **content} for status, text in _ERROR_STATUSES.items()}


def _merge_schemas(into: dict[str, Any], new: dict[str, Any]) -> None:
    """Add component schemas; one name must not mean two schemas."""
    for name, schema in new.items():
        if name in into and into[name] != schema:
            raise ValueError(f"two different schemas are named {name!r} in the OpenAPI components")
        into[name] = schema


class _StreamSchemas:
    """The JSON schemas of the streaming routes' models, generated together (shared
    definitions once, refs into ``components/schemas``)."""

    def __init__(self, routes: Iterable[StreamRoute]) -> None:
        wanted: dict[tuple[type[BaseModel], Mode], None] = {}
        for route in routes:
            if route.body:
                wanted[(model_of(route.body), "validation")] = None
            if route.response:
                wanted[(model_of(route.response), "serialization")] = None
            for event in route.events:
                wanted[(model_of(event.data), "serialization")] = None
        refs, definitions = models_json_schema(list(wanted), ref_template=_REF)
        self._refs = refs
        self.components: dict[str, Any] = definitions.get("$defs", {})

    def ref(self, model: str, mode: Mode) -> dict[str, Any]:
        return self._refs[(model_of(model), mode)]

    def query(self, model: str) -> dict[str, Any]:
        """A query model's own schema (its properties become parameters, not a component)."""
        schema = model_of(model).model_json_schema(ref_template=_REF)
        _merge_schemas(self.components, schema.pop("$defs", {}))
        return schema


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


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                     "schema": {k: v for k, v in prop.items() if k not in ("title", "description")}}
        if prop.get("description"):
            parameter["description"] = prop["description"]
        parameters.append(parameter)
    return parameters


def _stream_operation(fn: Function, route: StreamRoute, operation_id: str, schemas: _StreamSchemas) -> dict[str, Any]:
    dialect = dialect_for(route.dialect)
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(route.path)]
    if route.query:
        parameters += _query_parameters(schemas.query(route.query))
    if route.streams and route.method.upper() == "GET":
        parameters.append({"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"},
                           "description": "Replay the events after this one, then follow live"})
    responses: dict[str, Any] = {}
    if route.streams:
        events = [EventDoc(event.type, schemas.ref(event.data, "serialization"), event.description)
                  for event in route.events]
        content = {EVENT_STREAM: {"schema": dialect.event_stream_schema(events)}}
        if route.response and route.status == 200:
            # The same request may ask for the result as one JSON answer instead.
            content["application/json"] = {"schema": dialect.success_schema(schemas.ref(route.response,
                                                                                        "serialization"))}
        responses["200"] = {"description": _EVENT_STREAM_DESCRIPTION, "content": content}
    if route.response and str(route.status) not in responses:
        responses[str(route.status)] = {"description": "The success answer", "content": {"application/json": {
            "schema": dialect.success_schema(schemas.ref(route.response, "serialization"))}}}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": route.summary,
        "description": fn.description or route.summary,
        "parameters": parameters,
        "responses": {**responses, **_error_responses(dialect)},
        "security": [{"bearerAuth": []}],
        "x-stratus-permission": route.permission,
        # Served by a Lambda function URL behind the edge (CloudFront), not by API Gateway.
        "x-stratus-streaming": True,
    }
    if route.tag:
        operation["tags"] = [route.tag]
    if route.body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": schemas.ref(route.body, "validation")}}}
    return operation


def _streaming(functions: Iterable[Function]) -> list[tuple[Function, StreamRoute]]:
    return [(fn, route) for fn in functions if isinstance(fn.trigger, FunctionUrl) for route in fn.trigger.routes]


def streaming_paths(functions: Iterable[Function]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The operations of the streaming functions' routes (path → method → operation), and the
    component schemas they refer to. From the catalog alone: no app module is imported."""
    routes = _streaming(functions)
    schemas = _StreamSchemas(route for _, route in routes)
    paths: dict[str, dict[str, Any]] = {}
    taken: set[str] = set()
    for fn, route in routes:
        operation = _stream_operation(fn, route, _stream_operation_id(fn, route, taken), schemas)
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return paths, schemas.components


def build_openapi(functions: Iterable[Function]) -> dict[str, Any]:
    """The document of ``functions`` (the catalog's, by the callers): every HTTP API route and
    every streaming route. Imports each HTTP function's module for its resolver's part."""
    functions = list(functions)
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for fn in functions:
        if not isinstance(fn.trigger, Http):
            continue
        app = importlib.import_module(fn.module).app
        dialect = app.dialect
        error_name, error_schema = dialect.error_schema()
        _merge_schemas(schemas, {error_name: error_schema})
        part = app.resolver.get_openapi_schema(title="part", version="0").model_dump(
            mode="json", by_alias=True, exclude_none=True)
        # As before: parts of one model may differ in detail (Powertools' own naming); the last wins.
        schemas.update((part.get("components") or {}).get("schemas") or {})
        for path, operations in (part.get("paths") or {}).items():
            for method, operation in operations.items():
                operation.setdefault("description", fn.description or fn.trigger.summary)
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for status, answer in _error_responses(dialect).items():
                    responses.setdefault(status, answer)
                if app.route.auth:
                    operation["security"] = [{"bearerAuth": []}]
                    operation["x-stratus-permission"] = app.route.permission
                else:
                    operation["security"] = []
                paths.setdefault(path, {})[method] = operation
    stream_paths, stream_schemas = streaming_paths(functions)
    _merge_schemas(schemas, stream_schemas)
    for _, route in _streaming(functions):
        _merge_schemas(schemas, dict([dialect_for(route.dialect).error_schema()]))
    for path, operations in stream_paths.items():
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
