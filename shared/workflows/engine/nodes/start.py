"""start: answers the run's inputs, one output per declared variable. The inputs were validated
against these declarations (required, type, options, defaults) when the run was created, and
reach the node as ``RunContext.inputs``; a variable left out answers its default, else None."""

from __future__ import annotations

from typing import Any

from shared.workflows.configs import StartConfig
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput


def resolve(call: NodeCall[StartConfig]) -> dict[str, Any]:
    inputs = call.context.inputs
    return {variable.variable: inputs.get(variable.variable, variable.default)
            for variable in call.config.variables}


def execute(call: NodeCall[StartConfig], inputs: dict[str, Any]) -> NodeOutput:
    return NodeOutput(dict(inputs))


EXECUTOR = NodeExecutor(resolve, execute)
