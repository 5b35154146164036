"""OpenAPI tool sets: a tenant's OpenAPI 3.0/3.1 document (JSON or YAML, as an object or a
string) read into tools, one per operation, and a tool call turned into the HTTP request it
stands for (shared/workflows/fetch/ports.FetchRequest, made by the safe fetch path).

- ``$ref``s are resolved inside the document (``#/components/...``); a reference to another
  file or URL is refused (the platform fetches nothing to read a document), a recursive
  schema is cut where it recurses (an object of any shape), and the expansion is bounded so
  a small document cannot blow up.
- A tool's arguments are one JSON schema object: each path, query, header and cookie
  parameter by its name (prefixed with its location when two locations share a name), and
  the JSON request body as ``body``.
- Problems are :class:`OpenApiProblem`s naming where in the document they are.

Import-light: the standard library and PyYAML.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
LOCATIONS = ("path", "query", "header", "cookie")
MAX_DOCUMENT_CHARS = 2_000_000
MAX_TOOLS = 200
# Nodes the resolved document may hold: references multiply a document's size.
_MAX_NODES = 200_000
_MAX_DEPTH = 64
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Headers the request builder owns: an operation's parameter of that name is not sent.
_RESERVED_HEADERS = frozenset({"host", "content-length", "content-type", "authorization", "cookie",
                               "transfer-encoding", "connection"})


class OpenApiProblem(ValueError):
    """The document cannot be read into tools: ``where`` is a JSON pointer-like path in it."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


# --- loading -------------------------------------------------------------------------------


def load_document(value: Any) -> dict[str, Any]:
    """The document as an object: a mapping as it is, a string read as JSON, else as YAML."""
    if isinstance(value, str):
        if len(value) > MAX_DOCUMENT_CHARS:
            raise OpenApiProblem("", f"the document is over {MAX_DOCUMENT_CHARS} characters")
        text = value.strip()
        if not text:
            raise OpenApiProblem("", "the document is empty")
        try:
            value = json.loads(text)
        except ValueError:
            import yaml

            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
                raise OpenApiProblem("", f"neither JSON nor YAML{at}: {getattr(exc, 'problem', None) or exc}") \
                    from None
    if not isinstance(value, Mapping):
        raise OpenApiProblem("", "an OpenAPI document is an object (with openapi, info and paths)")
    document = _plain(value, "", 0)
    version = document.get("openapi")
    if not isinstance(version, str):
        if "swagger" in document:
            raise OpenApiProblem("swagger", "Swagger 2.0 is not supported: convert the document to OpenAPI 3")
        raise OpenApiProblem("openapi", "missing: the document must say its OpenAPI version (3.0.x or 3.1.x)")
    if not re.fullmatch(r"3\.[01](\.\d+)?(-[0-9A-Za-z.]+)?", version):
        raise OpenApiProblem("openapi", f"version {version!r} is not supported: use OpenAPI 3.0 or 3.1")
    paths = document.get("paths")
    if not isinstance(paths, Mapping) or not paths:
        raise OpenApiProblem("paths", "the document has no paths: each operation becomes a tool")
    return document


def _plain(value: Any, where: str, depth: int) -> Any:
    """JSON-compatible data (YAML may hold dates, non-string keys...), depth-bounded."""
    if depth > _MAX_DEPTH:
        raise OpenApiProblem(where, f"nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}/{_escape(str(k))}", depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}/{i}", depth + 1) for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, float) and value != value:  # NaN
            return None
        return value
    return str(value)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


# --- references ----------------------------------------------------------------------------


class _Resolver:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.nodes = 0

    def target(self, ref: str, where: str) -> Any:
        if not ref.startswith("#"):
            raise OpenApiProblem(where, f"$ref {ref!r} points outside the document: inline it (only "
                                        "references inside the document, #/..., are resolved)")
        node: Any = self.document
        for part in [p for p in ref[1:].split("/") if p != ""]:
            key = _unescape(part)
            if isinstance(node, Mapping) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise OpenApiProblem(where, f"$ref {ref!r} does not resolve: nothing at that path")
        return node

    def resolve(self, value: Any, where: str, stack: tuple[str, ...] = ()) -> Any:
        """``value`` with every ``$ref`` replaced by what it names (siblings of a ``$ref`` are
        merged over it, as 3.1 allows); a reference to one being resolved is cut short."""
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise OpenApiProblem(where, "the document's references expand to too much: simplify it or split it "
                                        "into several tool providers")
        if len(stack) > _MAX_DEPTH:
            raise OpenApiProblem(where, f"references nest deeper than {_MAX_DEPTH} levels")
        if isinstance(value, Mapping):
            ref = value.get("$ref")
            if isinstance(ref, str):
                if ref in stack:
                    return {"type": "object", "description": f"(recursive: {ref.rsplit('/', 1)[-1]})"}
                resolved = self.resolve(self.target(ref, f"{where}/$ref"), f"{where}/$ref", (*stack, ref))
                siblings = {k: v for k, v in value.items() if k != "$ref"}
                if siblings and isinstance(resolved, Mapping):
                    return {**resolved, **self.resolve(siblings, where, stack)}
                return resolved
            return {k: self.resolve(v, f"{where}/{_escape(k)}", stack) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, f"{where}/{i}", stack) for i, v in enumerate(value)]
        return value


# --- operations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One operation parameter: ``argument`` is its name among the tool's arguments."""

    argument: str
    name: str
    location: str
    required: bool
    schema: dict[str, Any]
    explode: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"argument": self.argument, "name": self.name, "in": self.location, "required": self.required,
                "schema": self.schema, "explode": self.explode}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Parameter:
        return cls(argument=data["argument"], name=data["name"], location=data["in"], required=data["required"],
                   schema=dict(data.get("schema") or {}), explode=bool(data.get("explode", True)))


@dataclass(frozen=True)
class Operation:
    """An operation as a tool: its name, what it does, how to call it, and the JSON schema of
    its arguments."""

    name: str
    description: str
    method: str
    path: str
    parameters: tuple[Parameter, ...] = ()
    # The request body's media type (None: the operation takes none) and whether it is required.
    body_type: str | None = None
    body_required: bool = False
    body_schema: dict[str, Any] = field(default_factory=dict)

    @property
    def arguments_schema(self) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for parameter in self.parameters:
            schema = dict(parameter.schema)
            if "description" not in schema:
                schema["description"] = f"{parameter.location} parameter {parameter.name}"
            properties[parameter.argument] = schema
            if parameter.required:
                required.append(parameter.argument)
        if self.body_type is not None:
            properties["body"] = self.body_schema or {"description": f"the request body ({self.body_type})"}
            if self.body_required:
                required.append("body")
        result: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            result["required"] = required
        return result

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "method": self.method, "path": self.path,
                "parameters": [p.to_json() for p in self.parameters], "body_type": self.body_type,
                "body_required": self.body_required, "body_schema": self.body_schema}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Operation:
        return cls(name=data["name"], description=data.get("description", ""), method=data["method"],
                   path=data["path"], parameters=tuple(Parameter.from_json(p) for p in data.get("parameters", [])),
                   body_type=data.get("body_type"), body_required=bool(data.get("body_required")),
                   body_schema=dict(data.get("body_schema") or {}))


@dataclass(frozen=True)
class ToolSet:
    operations: tuple[Operation, ...]
    # The document's first server URL (None: it names none).
    default_server: str | None


def read_tool_set(value: Any) -> tuple[dict[str, Any], ToolSet]:
    """The document (as an object) and its operations as tools. Raises :class:`OpenApiProblem`."""
    document = load_document(value)
    resolver = _Resolver(document)
    operations: list[Operation] = []
    taken: set[str] = set()
    for path, item in document["paths"].items():
        where = f"paths/{_escape(path)}"
        if not path.startswith("/"):
            raise OpenApiProblem(where, "a path starts with /")
        item = resolver.resolve(item, where)
        if not isinstance(item, Mapping):
            raise OpenApiProblem(where, "a path item is an object of operations")
        shared_parameters = item.get("parameters") or []
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            if not isinstance(operation, Mapping):
                raise OpenApiProblem(f"{where}/{method}", "an operation is an object")
            operations.append(_operation(method, path, operation, shared_parameters, f"{where}/{method}", taken))
            if len(operations) > MAX_TOOLS:
                raise OpenApiProblem("paths", f"more than {MAX_TOOLS} operations: split the document into "
                                              "several tool providers")
    if not operations:
        raise OpenApiProblem("paths", "the document has no operations: each operation becomes a tool")
    return document, ToolSet(tuple(operations), first_server(document))


def first_server(document: Mapping[str, Any]) -> str | None:
    servers = document.get("servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], Mapping):
        return None
    url = servers[0].get("url")
    if not isinstance(url, str) or not url:
        return None
    variables = servers[0].get("variables")
    if isinstance(variables, Mapping):
        for name, spec in variables.items():
            if isinstance(spec, Mapping) and isinstance(spec.get("default"), str):
                url = url.replace("{" + name + "}", spec["default"])
    return url


def tool_name(method: str, path: str, operation_id: Any) -> str:
    """The operationId when it is a usable function name (sanitized), else ``<method>_<path>``."""
    if isinstance(operation_id, str) and operation_id.strip():
        base = re.sub(r"[^A-Za-z0-9_-]+", "_", operation_id.strip()).strip("_")
    else:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
        base = f"{method}_{slug}" if slug else method
    return (base or method)[:64]


def _operation(method: str, path: str, operation: Mapping[str, Any], shared: Any, where: str,
               taken: set[str]) -> Operation:
    name = tool_name(method, path, operation.get("operationId"))
    candidate, n = name, 2
    while candidate.lower() in taken:
        suffix = f"_{n}"
        candidate = name[:64 - len(suffix)] + suffix
        n += 1
    taken.add(candidate.lower())
    summary = str(operation.get("summary") or "").strip()
    details = str(operation.get("description") or "").strip()
    description = "\n\n".join(part for part in (summary, details) if part) or f"{method.upper()} {path}"
    parameters = _parameters(path, shared, operation.get("parameters") or [], where)
    body_type, body_required, body_schema = _body(operation.get("requestBody"), f"{where}/requestBody")
    return Operation(name=candidate, description=description[:2000], method=method.upper(), path=path,
                     parameters=parameters, body_type=body_type, body_required=body_required,
                     body_schema=body_schema)


def _parameters(path: str, shared: Any, own: Any, where: str) -> tuple[Parameter, ...]:
    declared: dict[tuple[str, str], tuple[Mapping[str, Any], str]] = {}
    for source, values in (("parameters", shared), ("parameters", own)):
        if not isinstance(values, list):
            raise OpenApiProblem(f"{where}/{source}", "parameters are a list")
        for i, parameter in enumerate(values):
            at = f"{where}/{source}/{i}"
            if not isinstance(parameter, Mapping):
                raise OpenApiProblem(at, "a parameter is an object")
            name, location = parameter.get("name"), parameter.get("in")
            if not isinstance(name, str) or not name:
                raise OpenApiProblem(f"{at}/name", "a parameter needs a name")
            if location not in LOCATIONS:
                raise OpenApiProblem(f"{at}/in", f"must be one of {', '.join(LOCATIONS)}")
            # The operation's own parameters override the path item's of the same name and place.
            declared[(location, name)] = (parameter, at)
    counts: dict[str, int] = {}
    for _, name in declared:
        counts[name] = counts.get(name, 0) + 1
    result: list[Parameter] = []
    template_names = set(re.findall(r"\{([^}/]+)\}", path))
    for (location, name), (parameter, at) in declared.items():
        if location == "header" and name.lower() in _RESERVED_HEADERS:
            continue
        argument = name if counts[name] == 1 else f"{location}_{name}"
        schema = parameter.get("schema")
        if schema is None and isinstance(parameter.get("content"), Mapping):
            media = next(iter(parameter["content"].values()), None)
            schema = media.get("schema") if isinstance(media, Mapping) else None
        if schema is None:
            schema = {"type": "string"}
        if not isinstance(schema, Mapping):
            raise OpenApiProblem(f"{at}/schema", "a schema is an object")
        schema = dict(schema)
        if isinstance(parameter.get("description"), str) and "description" not in schema:
            schema["description"] = parameter["description"]
        required = location == "path" or parameter.get("required") is True
        if location == "path" and name not in template_names:
            raise OpenApiProblem(f"{at}/name", f"path parameter {name!r} is not in the path {path}")
        explode = parameter.get("explode")
        result.append(Parameter(argument=argument, name=name, location=location, required=required,
                                schema=_clean_schema(schema),
                                explode=explode if isinstance(explode, bool) else parameter.get("style", "form")
                                == "form"))
    missing = template_names - {p.name for p in result if p.location == "path"}
    if missing:
        raise OpenApiProblem(where, f"the path names {', '.join(sorted(missing))} but declares no such path "
                                    "parameter")
    return tuple(result)


_JSON_TYPE = re.compile(r"^application/([a-z0-9.+-]+\+)?json(;.*)?$", re.IGNORECASE)


def _body(body: Any, where: str) -> tuple[str | None, bool, dict[str, Any]]:
    if body is None:
        return None, False, {}
    if not isinstance(body, Mapping) or not isinstance(body.get("content"), Mapping) or not body["content"]:
        raise OpenApiProblem(where, "a requestBody names its content by media type")
    content: Mapping[str, Any] = body["content"]
    chosen = next((t for t in content if _JSON_TYPE.match(t)), None) \
        or next((t for t in content if t in ("application/x-www-form-urlencoded", "text/plain")), None) \
        or next(iter(content))
    media = content[chosen]
    schema = media.get("schema") if isinstance(media, Mapping) else None
    if schema is not None and not isinstance(schema, Mapping):
        raise OpenApiProblem(f"{where}/content/{_escape(chosen)}/schema", "a schema is an object")
    schema = _clean_schema(dict(schema or {}))
    if chosen.startswith("text/") and not schema:
        schema = {"type": "string"}
    if isinstance(body.get("description"), str) and "description" not in schema:
        schema["description"] = body["description"]
    return chosen, body.get("required") is True, schema


# Keywords of OpenAPI's schema dialect that JSON Schema validators do not know, or that mean
# something else there (3.0's nullable is folded into the type).
_OPENAPI_ONLY = ("discriminator", "xml", "externalDocs", "example", "deprecated", "readOnly", "writeOnly")


def _clean_schema(schema: Any) -> Any:
    """An OpenAPI schema as plain JSON Schema for validation and for models: 3.0's
    ``nullable`` folded into ``type``, documentation-only keywords dropped."""
    if isinstance(schema, list):
        return [_clean_schema(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    cleaned = {k: _clean_schema(v) for k, v in schema.items() if k not in _OPENAPI_ONLY and k != "nullable"}
    if schema.get("nullable") is True and isinstance(cleaned.get("type"), str):
        cleaned["type"] = [cleaned["type"], "null"]
    return cleaned


# --- calling -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpCall:
    """The parts of the request a call makes (the fetch path makes it)."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    params: list[tuple[str, str]]
    body: bytes | None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def join_url(base_url: str, path: str) -> str:
    """``path`` (already expanded) under ``base_url``'s own path."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    return urljoin(base, path.lstrip("/"))


def build_call(operation: Operation, base_url: str, arguments: Mapping[str, Any]) -> HttpCall:
    """The request for a call with validated ``arguments`` (auth is applied by the caller)."""
    path = operation.path
    params: list[tuple[str, str]] = []
    headers: list[tuple[str, str]] = []
    cookies: list[str] = []
    for parameter in operation.parameters:
        if parameter.argument not in arguments or arguments[parameter.argument] is None:
            continue
        value = arguments[parameter.argument]
        if parameter.location == "path":
            text = ",".join(_text(v) for v in value) if isinstance(value, list) else _text(value)
            encoded = quote(text, safe="")
            if encoded.strip(".") == "":
                # "." or "..": a dot segment, which the URL would resolve away (a value would
                # climb out of the operation's path, the provider's credentials sent along).
                encoded = encoded.replace(".", "%2E")
            path = path.replace("{" + parameter.name + "}", encoded)
        elif parameter.location == "query":
            if isinstance(value, list) and parameter.explode:
                params.extend((parameter.name, _text(v)) for v in value)
            elif isinstance(value, list):
                params.append((parameter.name, ",".join(_text(v) for v in value)))
            elif isinstance(value, Mapping) and parameter.explode:
                params.extend((str(k), _text(v)) for k, v in value.items())
            else:
                params.append((parameter.name, _text(value)))
        elif parameter.location == "header":
            text = ",".join(_text(v) for v in value) if isinstance(value, list) else _text(value)
            headers.append((parameter.name, text))
        else:
            cookies.append(f"{parameter.name}={quote(_text(value), safe='')}")
    if cookies:
        headers.append(("Cookie", "; ".join(cookies)))
    body: bytes | None = None
    if operation.body_type is not None and arguments.get("body") is not None:
        value = arguments["body"]
        if operation.body_type == "application/x-www-form-urlencoded" and isinstance(value, Mapping):
            from urllib.parse import urlencode

            body = urlencode([(str(k), _text(v)) for k, v in value.items()]).encode()
        elif _JSON_TYPE.match(operation.body_type):
            body = json.dumps(value, ensure_ascii=False).encode()
        else:
            body = (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)).encode()
        headers.append(("Content-Type", operation.body_type))
    return HttpCall(method=operation.method, url=join_url(base_url, path), headers=headers, params=params, body=body)


def check_base_url(url: str) -> str | None:
    """Why ``url`` cannot be a base URL (None: it can)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "give an absolute http or https URL (the document's servers may be relative: set base_url)"
    if parts.query or parts.fragment:
        return "a base URL has no query or fragment"
    return None
