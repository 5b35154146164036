"""A small JSON Schema check for LLM structured output: ``type`` (one or a list), ``enum``,
``const``, ``properties``, ``required``, ``additionalProperties`` (false or a schema),
``items``, ``minItems``/``maxItems``, ``anyOf``. What a schema for a model's answer uses; other
keywords are not checked (the provider's own structured-output mode enforces the full schema
when it has one)."""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "object": (dict,), "array": (list,), "boolean": (bool,), "null": (type(None),),
    "number": (int, float), "integer": (int,),
}
MAX_PROBLEMS = 10


def _is_type(value: Any, name: str) -> bool:
    if name in ("number", "integer") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, (object,)))


def problems(value: Any, schema: Any, path: str = "$") -> list[str]:
    """Where ``value`` departs from ``schema``, one line each (empty: it conforms)."""
    if not isinstance(schema, dict):
        return []
    found: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_is_type(value, str(name)) for name in names):
            return [f"{path}: expected {' or '.join(map(str, names))}, got {_kind(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r} is not one of {schema['enum']!r}")
    if "const" in schema and value != schema["const"]:
        found.append(f"{path}: expected {schema['const']!r}")
    if "anyOf" in schema and isinstance(schema["anyOf"], list) \
            and all(problems(value, option, path) for option in schema["anyOf"]):
        found.append(f"{path}: matches none of the allowed shapes")
    if isinstance(value, dict):
        declared = schema.get("properties")
        properties: dict[str, Any] = declared if isinstance(declared, dict) else {}
        for name in schema.get("required") or []:
            if name not in value:
                found.append(f"{path}: missing required property {name!r}")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                found += problems(item, properties[name], f"{path}.{name}")
            elif extra is False:
                found.append(f"{path}: unexpected property {name!r}")
            elif isinstance(extra, dict):
                found += problems(item, extra, f"{path}.{name}")
    if isinstance(value, list):
        if isinstance(schema.get("minItems"), int) and len(value) < schema["minItems"]:
            found.append(f"{path}: fewer than {schema['minItems']} items")
        if isinstance(schema.get("maxItems"), int) and len(value) > schema["maxItems"]:
            found.append(f"{path}: more than {schema['maxItems']} items")
        if isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                found += problems(item, schema["items"], f"{path}[{index}]")
    return found[:MAX_PROBLEMS]


def _kind(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(value, name):
            return name
    return type(value).__name__
