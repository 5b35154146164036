"""variable_aggregator: the first of its variables that has a value, as ``output`` (the branch
that ran, where branches join); with groups, one ``{group_name: {"output": value}}`` per group.
As Dify's: a variable counts once it has a value other than None; none gives None."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.workflows.configs import VariableAggregatorConfig
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput, selector_key


def _selectors(config: VariableAggregatorConfig) -> list[Sequence[str]]:
    if config.groups:
        return [selector for group in config.groups for selector in group.variables]
    return list(config.variables)


def resolve(call: NodeCall[VariableAggregatorConfig]) -> dict[str, Any]:
    return {selector_key(selector): call.pool.get_or_none(selector) for selector in _selectors(call.config)}


def _first(selectors: Sequence[Sequence[str]], inputs: dict[str, Any]) -> Any:
    return next((value for selector in selectors if (value := inputs.get(selector_key(selector))) is not None), None)


def execute(call: NodeCall[VariableAggregatorConfig], inputs: dict[str, Any]) -> NodeOutput:
    config = call.config
    if config.groups:
        return NodeOutput({group.group_name: {"output": _first(group.variables, inputs)} for group in config.groups})
    return NodeOutput({"output": _first(config.variables, inputs)})


EXECUTOR = NodeExecutor(resolve, execute)
