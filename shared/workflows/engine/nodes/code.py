"""code: runs the node's Python (``main(**variables)``) in the sandbox, never in this process
(:mod:`shared.workflows.sandbox`: a separate function in AWS, a child process locally), then
checks the returned dict against the declared outputs (Dify's rules). The sandbox's wall and
CPU limits follow the node's timeout (within the sandbox's maximum), so the sandbox's own
``code_timeout`` names which limit the code hit. Sandbox errors keep their codes
(``code_raised``, ``code_timeout``, ``code_memory_exceeded``, ``code_output_invalid``…), with
what the code printed before failing in the details."""

from __future__ import annotations

import math
from typing import Any

from shared.workflows.configs import CodeConfig
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput, values_of


def resolve(call: NodeCall[CodeConfig]) -> dict[str, Any]:
    return values_of(call.pool, {binding.variable: binding.value_selector for binding in call.config.variables})


def execute(call: NodeCall[CodeConfig], inputs: dict[str, Any]) -> NodeOutput:
    from shared.workflows.sandbox.outputs import check_outputs
    from shared.workflows.sandbox.ports import MAX_CPU_SECONDS, MAX_WALL_SECONDS, CodeError, CodeLimits, CodeRequest

    seconds = max(1, min(math.floor(call.timeout_s), MAX_WALL_SECONDS))
    limits = CodeLimits(cpu_seconds=min(seconds, MAX_CPU_SECONDS), wall_seconds=seconds)
    declared = {name: output.type for name, output in call.config.outputs.items()}
    try:
        result = call.ports.code_runner.run(CodeRequest(call.config.code, inputs, limits))
        return NodeOutput(check_outputs(result, declared))
    except CodeError as exc:
        details = dict(exc.details)
        if exc.stdout:
            details["stdout"] = exc.stdout
        raise NodeFailure(exc.code, exc.message, details=details) from exc


EXECUTOR = NodeExecutor(resolve, execute)
