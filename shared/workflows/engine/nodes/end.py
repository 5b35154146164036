"""end: the run's outputs, each taken from its selector and passed on as it is (a selector with
no value, from a branch that did not run, answers None). A run's outputs merge the end nodes
that ran (``runner.run_outputs``)."""

from __future__ import annotations

from typing import Any

from shared.workflows.configs import EndConfig
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput, values_of


def resolve(call: NodeCall[EndConfig]) -> dict[str, Any]:
    return values_of(call.pool, {output.variable: output.value_selector for output in call.config.outputs})


def execute(call: NodeCall[EndConfig], inputs: dict[str, Any]) -> NodeOutput:
    return NodeOutput(dict(inputs))


EXECUTOR = NodeExecutor(resolve, execute)
