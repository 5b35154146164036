"""The catalog's state machine definitions as ASL: loaded from each spec's builder and
rendered with real function ARNs. Shared by CDK, the local runtime and the tests."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping
from typing import Any

from shared.catalog import StateMachineSpec

PLACEHOLDER = re.compile(r"\$\{fn:([^}]*)\}")


def load_definition(spec: StateMachineSpec) -> dict[str, Any]:
    """The ASL ``spec.definition`` (``module:function``) builds, with ``${fn:...}`` placeholders."""
    module_name, _, attribute = spec.definition.partition(":")
    definition = getattr(importlib.import_module(module_name), attribute)()
    if not isinstance(definition, dict):
        raise TypeError(f"{spec.definition} must return the ASL as a dict")
    return definition


def referenced_functions(spec: StateMachineSpec) -> set[str]:
    return set(PLACEHOLDER.findall(json.dumps(load_definition(spec))))


def render_definition(definition: Mapping[str, Any], function_arns: Mapping[str, str]) -> str:
    """The ASL as JSON with every ``${fn:<name>}`` replaced by that function's ARN."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in function_arns:
            raise ValueError(f"state machine definition names unknown function {name!r}")
        return function_arns[name]

    return PLACEHOLDER.sub(replace, json.dumps(definition))


def waits_for_task_tokens(definition: Mapping[str, Any]) -> bool:
    """The definition has a ``.waitForTaskToken`` task (which Express machines cannot run)."""
    return ".waitForTaskToken" in json.dumps(definition)
