"""The OpenAPI 3.1 document, generated from the function catalog handed in and each handler's
pydantic models (Powertools builds each HTTP route's part; this merges them). The routes of
the streaming functions (function URLs, ``StreamRoute``) are documented from their catalog
declaration alone: body, query and answer models, the event types with their data, the
heartbeat; every answer in the route's dialect."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterable
from types import ModuleType
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.catalog import DEFAULT_DIALECT, Function, FunctionUrl, Http, StreamRoute, under_prefix
from shared.http.dialect import EVENT_STREAM, Dialect, EventDoc, dialect_for
from shared.http.idempotency import MAX_KEY_LENGTH, REPLAYED_HEADER, takes_idempotency_key
from shared.http.refs import model_of

__all__ = ["EVENT_STREAM", "build_openapi", "streaming_paths"]

_ERROR_STATUSES = {
    "400": "Malformed request body (not JSON, not UTF-8, nested too deep)",
    "401": "Missing, invalid, expired or revoked token",
    "403": "Authenticated but not allowed",
    "404": "Not found, or owned by another tenant (a malformed id too)",
    "409": "Conflict (duplicate, stale version, last owner, busy conversation, unpublished agent)",
    "413": "Request body too large",
    "415": "Request body not sent as application/json",
    "422": "Validation failed (field-level details)",
    "429": "Rate limited or over a hard quota (see Retry-After)",
    "500": "Internal error",
    "502": "A model provider failed",
    "503": "A dependency (database, vector store, model provider, secrets) is unavailable",
}
# Only a route with a request body can answer 415; only a replay can find its events expired.
_BODY_ONLY = frozenset({"415"})
# A route without auth checks no token and has no per-token rate limit.
_AUTH_ONLY = frozenset({"401", "403", "429"})
_REPLAY_EXPIRED = {"410": "The events expired from the replay window: read the turn or run itself"}
_REF = "#/components/schemas/{model}"
# What API Gateway answers itself, before any function runs (the dialect does not apply):
# 401 when the Authorization header is missing while authorizer caching is on (the header is
# then the identity source), 500 when an integration fails.
_GATEWAY_MESSAGE = "GatewayMessage"
_GATEWAY_MESSAGE_SCHEMA = {
    "type": "object",
    "description": "API Gateway's own answer, not the route's dialect: `{\"message\": \"Unauthorized\"}` (401, no "
                   "Authorization header) or `{\"message\": \"Internal Server Error\"}` (500, the function failed)",
    "required": ["message"],
    "properties": {"message": {"type": "string", "enum": ["Unauthorized", "Internal Server Error"]}},
    "additionalProperties": False,
}
_REQUEST_ID_HEADER = {"X-Request-Id": {"description": "The request's id (also in the body)",
                                       "schema": {"type": "string"}}}
_LOCATION_HEADER = {"Location": {"description": "Where to poll the work", "schema": {"type": "string"}}}
_RATE_LIMIT_HEADERS = {
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}},
    "RateLimit-Limit": {"description": "The token's burst", "schema": {"type": "string"}},
    "RateLimit-Remaining": {"description": "Requests left in the burst", "schema": {"type": "string"}},
    "RateLimit-Reset": {"description": "Seconds until the burst is full again", "schema": {"type": "string"}},
}
_SERVERS = [{"url": "/", "description": "The deployment's base URL: the `BaseUrl` output of the stack (CloudFront), "
                                         "or the URL `make dev` prints locally"}]
_EVENT_STREAM_DESCRIPTION = (
    "Server-sent events: `event: <type>`, `id: <event id>`, `data: <json>`, separated by a blank line; a "
    "heartbeat when nothing else was sent for the heartbeat interval (`CHAT_HEARTBEAT_S` for chat, "
    "`WORKFLOW_STREAM_HEARTBEAT_S` for workflow runs: 10 s by default, at most 15 s), sent as `{heartbeat}` (no id: "
    "it does not move `Last-Event-ID`). Resume after a disconnect with the `Last-Event-ID` header.")
_PATH_PARAMETER = re.compile(r"{([^}]+)}")
Mode = Literal["validation", "serialization"]


def _error_responses(dialect: Dialect, *, body: bool, auth: bool, gateway: bool,
                     replay: bool = False) -> dict[str, Any]:
    """The error answers of a route in its dialect: ``body`` when it takes a request body
    (415), ``auth`` when it needs a token (401, 403, 429), ``gateway`` when API Gateway serves
    it (its own bare 401 and 500), ``replay`` when it replays a stream (410)."""
    name, _ = dialect.error_schema()
    error = {"$ref": _REF.format(model=name)}
    statuses = {**_ERROR_STATUSES, **(_REPLAY_EXPIRED if replay else {})}
    if dialect.validation_status != 422:
        # The dialect's API answers validation errors with its own status (400 for the facades).
        folded = str(dialect.validation_status)
        statuses[folded] = f"{statuses[folded]}; or validation failed (the fields are named)"
        del statuses["422"]
    responses: dict[str, Any] = {}
    for status, text in sorted(statuses.items()):
        if (status in _BODY_ONLY and not body) or (status in _AUTH_ONLY and not auth):
            continue
        schema: dict[str, Any] = error
        if gateway and status in ("401", "500"):
            schema = {"oneOf": [error, {"$ref": _REF.format(model=_GATEWAY_MESSAGE)}]}
            text += (" (API Gateway answers `{\"message\":\"Unauthorized\"}` itself when there is no Authorization "
                     "header)" if status == "401" else "")
        headers = {**_REQUEST_ID_HEADER, **dialect.answer_header_docs(),
                   **(_RATE_LIMIT_HEADERS if status == "429" else {})}
        responses[status] = {"description": text, "headers": headers,
                             "content": {"application/json": {"schema": schema}}}
    return responses


def _document_dialect_headers(responses: dict[str, Any], dialect: Dialect) -> None:
    """Every answer carries the dialect's own headers (Coze's ``X-Tt-Logid``)."""
    docs = dialect.answer_header_docs()
    for answer in responses.values():
        if docs and isinstance(answer, dict):
            answer["headers"] = {**answer.get("headers", {}), **docs}


def _merge_schemas(into: dict[str, Any], new: dict[str, Any]) -> None:
    """Add component schemas; one name must not mean two schemas. Powertools' parts drop
    ``"default": null`` (they are dumped without None values): that alone is no difference."""
    for name, schema in new.items():
        if name in into and _without_null_defaults(into[name]) != _without_null_defaults(schema):
            raise ValueError(f"two different schemas are named {name!r} in the OpenAPI components")
        into[name] = schema


def _without_null_defaults(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {key: _without_null_defaults(value) for key, value in schema.items()
                if not (key == "default" and value is None)}
    if isinstance(schema, list):
        return [_without_null_defaults(value) for value in schema]
    return schema


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
    if route.operation_id:
        if route.operation_id in taken:
            raise ValueError(f"two operations are named {route.operation_id!r}")
        taken.add(route.operation_id)
        return route.operation_id
    prefix = next(p for p in fn.trigger.path_prefixes if under_prefix(route.path, p))
    below = route.path.split("/")[len(prefix.split("/")):]
    literal = [seg for seg in below if seg and not seg.startswith("{")]
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
        # The heartbeat frame as the dialect writes it, newlines shown as \n.
        heartbeat = dialect.heartbeat().decode().replace("\n", "\\n")
        # A facade's stream is its API's (OpenAI: data lines only, no ids to resume from).
        description = (_EVENT_STREAM_DESCRIPTION.format(heartbeat=heartbeat) if route.dialect == DEFAULT_DIALECT
                       else content[EVENT_STREAM]["schema"].get("description", ""))
        responses["200"] = {"description": description, "content": content}
    if route.response and str(route.status) not in responses:
        success = (schemas.ref(route.response, "serialization") if route.whole_body
                   else dialect.page_schema(schemas.ref(route.response, "serialization")) if route.paged
                   else dialect.success_schema(schemas.ref(route.response, "serialization")))
        responses[str(route.status)] = {"description": "The success answer", "headers": _REQUEST_ID_HEADER,
                                        "content": {"application/json": {"schema": success}}}
    if route.response and route.accepted:
        responses["202"] = {
            "description": "Accepted: the work goes on; poll the resource `Location` names",
            "headers": {**_REQUEST_ID_HEADER, **_LOCATION_HEADER},
            "content": {"application/json": {"schema": dialect.success_schema(
                schemas.ref(route.response, "serialization"))}}}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": route.summary,
        "description": fn.description or route.summary,
        "parameters": parameters,
        # Function URLs are not behind API Gateway: every answer is the app's own.
        "responses": {**responses, **_error_responses(dialect, body=route.body is not None, auth=True, gateway=False,
                                                      replay=bool(route.streams and route.method.upper() == "GET"))},
        "security": [{"bearerAuth": []}],
        "x-stratus-permission": route.permission,
        # Served by a Lambda function URL behind the edge (CloudFront), not by API Gateway.
        "x-stratus-streaming": True,
    }
    _document_dialect_headers(operation["responses"], dialect)
    if route.tag:
        operation["tags"] = [route.tag]
    if route.body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": schemas.ref(route.body, "validation")}}}
    return operation


class _HandlerFacts(ast.NodeVisitor):
    """What an HTTP function's module answers, read from its source (the handler's calls on its
    app are the only place the success status and the sortable fields are written down):
    ``app.created`` 201, ``app.no_content`` 204, ``app.ok(..., status=N)`` N, anything else
    200; the statuses answered with a ``Location`` header (``headers={"Location": ...}``); and
    the sortable set handed to ``page_request``."""

    def __init__(self, module: ModuleType) -> None:
        self.statuses: set[int] = set()
        self.located: set[int] = set()
        self.sorts: frozenset[str] | None = None
        self._module = module
        self.visit(ast.parse(inspect.getsource(module)))
        if not self.statuses:
            self.statuses.add(200)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "app":
            if func.attr == "created":
                self.statuses.add(201)
            elif func.attr == "no_content":
                self.statuses.add(204)
            elif func.attr in ("ok", "page"):
                given = next((kw.value for kw in node.keywords if kw.arg == "status"), None)
                status = 200 if given is None else getattr(given, "value", None)
                if not isinstance(status, int):
                    # The document could not say which status this is.
                    raise ValueError(f"{self._module.__name__}: app.{func.attr}(status=...) must be an int literal")
                self.statuses.add(status)
                headers = next((kw.value for kw in node.keywords if kw.arg == "headers"), None)
                if isinstance(headers, ast.Dict) and any(
                        isinstance(key, ast.Constant) and key.value == "Location" for key in headers.keys):
                    self.located.add(status)
        elif isinstance(func, ast.Name) and func.id == "page_request" and len(node.args) == 4:
            allowed = node.args[3]
            if isinstance(allowed, ast.Name) and isinstance(getattr(self._module, allowed.id, None), frozenset):
                self.sorts = getattr(self._module, allowed.id)
        self.generic_visit(node)


def _sort_pattern(fields: frozenset[str]) -> str:
    field = "-?(?:" + "|".join(sorted(fields)) + ")"
    return f"^{field}(?:,{field})*$"


def _document_success(responses: dict[str, Any], statuses: set[int], located: set[int] | None = None) -> None:
    """Powertools documents every success as 200: move it to the statuses the handler answers
    (a 204 has no body), with ``Location`` where the handler sets it."""
    ok = responses.pop("200", None) or {}
    for status in sorted(statuses):
        if status == 204:
            responses["204"] = {"description": "Done; no body", "headers": _REQUEST_ID_HEADER}
        else:
            description = {201: "Created", 202: "Accepted; the work goes on in the background"}.get(
                status, ok.get("description", "Successful Response"))
            headers = {**_REQUEST_ID_HEADER, **(_LOCATION_HEADER if status in (located or ()) else {})}
            responses[str(status)] = {**ok, "description": description, "headers": headers}


def _document_idempotency(operation: dict[str, Any], responses: dict[str, Any], dialect: Dialect) -> None:
    """A slow POST's ``Idempotency-Key`` (shared/http/idempotency.py, docs/adr/0047)."""
    operation.setdefault("parameters", []).append({
        "name": "Idempotency-Key", "in": "header", "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
        "description": ("Retrying after a timeout? Send the same key and body: the first answer comes back "
                        f"(with {REPLAYED_HEADER}: true) instead of a second write; kept for a day per tenant")})
    error_name, _ = dialect.error_schema()
    responses.setdefault("409", {
        "description": "Conflict (also: the Idempotency-Key was used with another body, or its first request "
                       "still runs)",
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{error_name}"}}}})


def _document_sort(operation: dict[str, Any], sorts: frozenset[str] | None) -> None:
    """The ``sort`` query parameter names only the fields the route sorts by."""
    for parameter in operation.get("parameters", ()):
        if parameter.get("in") == "query" and parameter.get("name") == "sort" and sorts:
            parameter["schema"]["pattern"] = _sort_pattern(sorts)
            parameter["description"] = (f"{parameter.get('description', '')}; sortable fields: "
                                        f"{', '.join(sorted(sorts))}").lstrip("; ")


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
        module = importlib.import_module(fn.module)
        app = module.app
        facts = _HandlerFacts(module)
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
                _document_success(responses, facts.statuses, facts.located)
                _document_sort(operation, facts.sorts)
                errors = _error_responses(dialect, body="requestBody" in operation, auth=fn.trigger.auth, gateway=True)
                for status, answer in errors.items():
                    responses.setdefault(status, answer)
                if app.route.auth and takes_idempotency_key(fn):
                    _document_idempotency(operation, responses, dialect)
                _document_dialect_headers(responses, dialect)
                if app.route.auth:
                    operation["security"] = [{"bearerAuth": []}]
                    operation["x-stratus-permission"] = app.route.permission
                else:
                    operation["security"] = []
                paths.setdefault(path, {})[method] = operation
    _merge_schemas(schemas, {_GATEWAY_MESSAGE: _GATEWAY_MESSAGE_SCHEMA})
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
        "servers": _SERVERS,
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "Access token (pat_...)"}},
        },
    }
