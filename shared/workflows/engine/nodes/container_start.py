"""iteration_start, loop_start and loop_end: markers of a container's sub-graph. A start node
is where each item or round begins; a loop_end that runs ends the loop after its round
(:mod:`.loop`). They answer nothing."""

from __future__ import annotations

from typing import Any

from shared.workflows.configs import EmptyConfig
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput


def resolve(call: NodeCall[EmptyConfig]) -> dict[str, Any]:
    return {}


def execute(call: NodeCall[EmptyConfig], inputs: dict[str, Any]) -> NodeOutput:
    return NodeOutput({})


EXECUTOR = NodeExecutor(resolve, execute)
