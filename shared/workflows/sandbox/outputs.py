"""The code node's result checked against its declared outputs, as Dify's code node checks it
(``api/core/workflow/nodes/code/code_node.py``): every declared output present and of its type
(``None`` stands for any), no undeclared ones, strings, numbers, arrays and nesting within limits.
Errors name the output by its key path (``items[2].name``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.workflows.sandbox.ports import CodeOutputInvalid

# Stratus's variable types (the workflow definition's).
OUTPUT_TYPES = ("string", "number", "boolean", "object", "array[string]", "array[number]", "array[boolean]",
                "array[object]")


@dataclass(frozen=True)
class OutputLimits:
    """Dify's defaults (its CODE_MAX_* settings), except the array lengths: Dify allows 30
    strings or objects, which the output-size limit makes unnecessary; Stratus allows 1000 of
    each, as Dify does for numbers."""

    max_depth: int = 5
    max_string_length: int = 400_000
    max_number: int = 2**63 - 1
    min_number: int = -(2**63)
    # Decimal places of a float.
    max_precision: int = 20
    max_array_length: int = 1000


def check_outputs(result: Mapping[str, Any], declared: Mapping[str, str],
                  limits: OutputLimits | None = None) -> dict[str, Any]:
    """``result`` (what ``main`` returned) as the node's outputs: each declared output checked
    against its type. Raises CodeOutputInvalid naming the first output that does not fit."""
    return _Checker(limits or OutputLimits()).declared(result, declared)


class _Checker:
    def __init__(self, limits: OutputLimits) -> None:
        self.limits = limits

    def declared(self, result: Mapping[str, Any], declared: Mapping[str, str]) -> dict[str, Any]:
        checked: dict[str, Any] = {}
        for name, kind in declared.items():
            if name not in result:
                raise _invalid(name, f"output {name} is missing from main's result; return it in the dict "
                                     f"(as a {kind}, or None)")
            checked[name] = self.value(result[name], kind, name, depth=1)
        undeclared = [name for name in result if name not in declared]
        if undeclared:
            listed = ", ".join(sorted(str(name) for name in undeclared))
            raise _invalid(str(undeclared[0]), f"main returned outputs the node does not declare: {listed}; "
                                               "declare them as outputs of the node or leave them out of the dict")
        return checked

    def value(self, value: Any, kind: str, path: str, depth: int) -> Any:
        if value is None:
            return None
        if kind == "string":
            return self.string(value, path)
        if kind == "number":
            return self.number(value, path)
        if kind == "boolean":
            if not isinstance(value, bool):
                raise _invalid(path, f"output {path} must be a boolean, got {_name(value)}; return True or False")
            return value
        if kind == "object":
            if not isinstance(value, Mapping):
                raise _invalid(path, f"output {path} must be an object, got {_name(value)}; return a dict")
            return self.untyped(value, path, depth + 1)
        if kind.startswith("array[") and kind.endswith("]") and kind in OUTPUT_TYPES:
            return self.array(value, kind[6:-1], path, depth)
        raise _invalid(path, f"output {path} has the unknown type {kind!r}; declare it as one of "
                             f"{', '.join(OUTPUT_TYPES)}")

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise _invalid(path, f"output {path} must be a string, got {_name(value)}; convert it with str(...)")
        if len(value) > self.limits.max_string_length:
            raise _invalid(path, f"output {path} is {len(value)} characters long, over the limit of "
                                 f"{self.limits.max_string_length}; return a shorter string")
        # As Dify: NUL characters do not survive (PostgreSQL text cannot hold them).
        return value.replace("\x00", "")

    def number(self, value: Any, path: str) -> int | float:
        if isinstance(value, bool):
            # As Dify, for workflows written against it: True and False count as 1 and 0.
            return int(value)
        if not isinstance(value, int | float):
            raise _invalid(path, f"output {path} must be a number, got {_name(value)}; convert it with int(...) "
                                 "or float(...)")
        limits = self.limits
        if not limits.min_number <= value <= limits.max_number:
            raise _invalid(path, f"output {path} is out of range: it must be between {limits.min_number} and "
                                 f"{limits.max_number}; return it as a string if it must be this large")
        if isinstance(value, float):
            exponent = Decimal(str(value)).normalize().as_tuple().exponent
            places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
            if places > limits.max_precision:
                raise _invalid(path, f"output {path} has {places} decimal places, over the limit of "
                                     f"{limits.max_precision}; round it (round(x, {limits.max_precision}))")
        return value

    def array(self, value: Any, item_kind: str, path: str, depth: int) -> list[Any]:
        if not isinstance(value, list):
            raise _invalid(path, f"output {path} must be an array of {item_kind}s, got {_name(value)}; return a list")
        if len(value) > self.limits.max_array_length:
            raise _invalid(path, f"output {path} has {len(value)} items, over the limit of "
                                 f"{self.limits.max_array_length}; return fewer")
        if item_kind == "number":
            # As Dify: a number array holds numbers only (no None).
            for i, item in enumerate(value):
                if item is None:
                    raise _invalid(f"{path}[{i}]", f"output {path}[{i}] must be a number, got None")
        return [self.value(item, item_kind, f"{path}[{i}]", depth) for i, item in enumerate(value)]

    def untyped(self, value: Mapping[str, Any], path: str, depth: int) -> dict[str, Any]:
        """An object without declared fields: its values checked by what they are (Dify's checks
        of an object with no schema), its nesting within the depth limit."""
        if depth > self.limits.max_depth:
            raise _invalid(path, f"output {path} nests deeper than {self.limits.max_depth} levels; flatten it "
                                 "(or return the inner part as a JSON string)")
        checked: dict[str, Any] = {}
        for key, item in value.items():
            checked[key] = self.inferred(item, f"{path}.{key}", depth)
        return checked

    def inferred(self, value: Any, path: str, depth: int) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return self.string(value, path)
        if isinstance(value, int | float):
            return self.number(value, path)
        if isinstance(value, Mapping):
            return self.untyped(value, path, depth + 1)
        if isinstance(value, list):
            if len(value) > self.limits.max_array_length:
                raise _invalid(path, f"output {path} has {len(value)} items, over the limit of "
                                     f"{self.limits.max_array_length}; return fewer")
            kinds = {_kind(item) for item in value if item is not None}
            if len(kinds) > 1:
                raise _invalid(path, f"output {path} is not a valid array: it mixes {', '.join(sorted(kinds))}; "
                                     "make all its items the same type")
            if kinds == {"array"}:
                # A list of lists is one level deeper per list, like a list of objects.
                return [None if item is None else self.inferred(item, f"{path}[{i}]", depth + 1)
                        for i, item in enumerate(value)]
            return [self.inferred(item, f"{path}[{i}]", depth) for i, item in enumerate(value)]
        raise _invalid(path, f"output {path} is not a valid type ({_name(value)}); return strings, numbers, "
                             "booleans, None, lists and dicts only")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _name(value: Any) -> str:
    return {"str": "a string", "int": "a number", "float": "a number", "bool": "a boolean", "dict": "an object",
            "list": "an array"}.get(type(value).__name__, type(value).__name__)


def _invalid(path: str, message: str) -> CodeOutputInvalid:
    return CodeOutputInvalid(message, output=path)
