"""human_input: never run by the node runner. The interpreter pauses the run on it
(.waitForTaskToken) and the runs API records the person's answer as its outputs
(docs/adr/0036-human-input-and-sub-workflows.md). Validation keeps it at the top level of a
workflow; one run anywhere else (inside a container, in a sub-workflow) fails."""

from __future__ import annotations

from typing import Any

from shared.workflows.configs import HumanInputConfig
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput


def resolve(call: NodeCall[HumanInputConfig]) -> dict[str, Any]:
    return {}


def execute(call: NodeCall[HumanInputConfig], inputs: dict[str, Any]) -> NodeOutput:
    raise NodeFailure("human_input_not_here",
                      "A human input node pauses a run only at the top level of the workflow the run runs; move it "
                      "out of its container, or out of the workflow called as a sub-workflow")


EXECUTOR = NodeExecutor(resolve, execute)
