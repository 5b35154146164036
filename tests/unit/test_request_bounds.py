"""Every number a request can carry is bounded at the edge (docs/architecture.md §7.4): an
integer field of a request body or query, reachable from the catalog, says the range its
column holds, so an out-of-range value is a 422 rather than the database's overflow (a 500)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from functions.catalog import FUNCTIONS
from shared.http.openapi import build_openapi


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi(FUNCTIONS)


def _request_roots(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                yield f"{where} {parameter['in']} {parameter['name']}", parameter.get("schema", {})
            for media, content in (operation.get("requestBody") or {}).get("content", {}).items():
                yield f"{where} body ({media})", content.get("schema", {})


def _unbounded_integers(schema: Any, where: str, components: dict[str, Any], seen: set[str]) -> Iterator[str]:
    if isinstance(schema, list):
        for item in schema:
            yield from _unbounded_integers(item, where, components, seen)
        return
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            yield from _unbounded_integers(components[name], f"{where} → {name}", components, seen)
    if schema.get("type") == "integer" or (isinstance(schema.get("type"), list) and "integer" in schema["type"]):
        has_max = "maximum" in schema or "exclusiveMaximum" in schema
        has_min = "minimum" in schema or "exclusiveMinimum" in schema
        fixed = "const" in schema or "enum" in schema  # a Literal: nothing else is accepted
        if not fixed and not (has_max and has_min):
            yield where
    for key, value in schema.items():
        if key in ("properties", "patternProperties") and isinstance(value, dict):
            for name, sub in value.items():
                yield from _unbounded_integers(sub, f"{where}.{name}", components, seen)
        elif key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties", "prefixItems", "$defs"):
            yield from _unbounded_integers(value if key != "$defs" else list(value.values()), where, components, seen)


def test_every_request_integer_is_bounded(document: dict[str, Any]) -> None:
    components = document.get("components", {}).get("schemas", {})
    roots = list(_request_roots(document))
    assert any("body" in where for where, _ in roots) and any(" query " in where for where, _ in roots)
    unbounded = [found for where, schema in roots for found in _unbounded_integers(schema, where, components, set())]
    assert unbounded == [], "integer request fields without minimum and maximum:\n" + "\n".join(unbounded)


def test_the_walk_finds_an_unbounded_integer() -> None:
    schema = {"$ref": "#/components/schemas/Body"}
    components = {"Body": {"type": "object", "properties": {"n": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                                                            "ok": {"type": "integer", "minimum": 1, "maximum": 9}}}}
    assert list(_unbounded_integers(schema, "POST /x body", components, set())) == ["POST /x body → Body.n"]
