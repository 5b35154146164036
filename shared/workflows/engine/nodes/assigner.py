"""assigner (Dify's variable assigner, v2; v1 imports as one item): changes variables, one item
after the other, with Dify's operations and rules (``api/core/workflow/nodes/variable_assigner``):
``over-write``, ``clear``, ``set``; ``+=``, ``-=``, ``*=``, ``/=`` on numbers; ``append``,
``extend``, ``remove-first``, ``remove-last`` on arrays. A value from a variable that is None
leaves the variable as it is (Dify skips it).

What it may change is what the scope it runs in declares writable: the variables of the loop
it is in and, in a chatflow, the conversation variables (``["conversation", name]``), which the
run's pool declares. A changed conversation variable is noted on the node's run (``assigned``)
and kept for the conversation's next turn. A conversation variable the document does not
declare (or any in a workflow) fails the node (``assigner_conversation_variable``), as
validation already reports. It answers no outputs; its recorded inputs are each target's and
source's value before the change.
"""

from __future__ import annotations

import json
from typing import Any

from shared.workflows.configs import AssignerConfig
from shared.workflows.definition import CONVERSATION
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput, selector_key
from shared.workflows.validation import (
    assigned_value,
    assignment_rule_problem,
    assignment_value_problem,
)
from shared.workflows.variables import UnresolvedVariable


def _takes_variable(item: Any) -> bool:
    return item.input_type == "variable" and item.operation not in ("clear", "remove-first", "remove-last")


def resolve(call: NodeCall[AssignerConfig]) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for item in call.config.items:
        inputs[selector_key(item.variable_selector)] = call.pool.get_or_none(item.variable_selector)
        if _takes_variable(item):
            try:
                inputs[selector_key(item.value)] = call.pool.get(item.value)
            except UnresolvedVariable as exc:
                raise NodeFailure("assigner_value_missing",
                                  f"{selector_key(item.value)} has no value in this run (its node did not run); "
                                  "assign from a node that runs before this one") from exc
    return inputs


def execute(call: NodeCall[AssignerConfig], inputs: dict[str, Any]) -> NodeOutput:
    for index, item in enumerate(call.config.items):
        target = selector_key(item.variable_selector)
        var_type = call.pool.variable_type(item.variable_selector)
        if var_type is None:
            if item.variable_selector[0] == CONVERSATION:
                raise NodeFailure("assigner_conversation_variable",
                                  f"Item {index}: {target} is no conversation variable of this run: only a chatflow "
                                  "has conversation variables, each declared in its conversation_variables")
            raise NodeFailure("assigner_target_not_writable",
                              f"Item {index}: {target} is not a variable this node can change; an assigner changes "
                              "the variables of the loop it is in ([loop_id, variable])")
        problem = assignment_rule_problem(var_type, item.operation, item.input_type)
        value = item.value
        if _takes_variable(item):
            value = call.pool.get_or_none(item.value)
            if value is None:
                continue
        if item.operation == "set" and var_type == "object" and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                problem = problem or f"{value!r} is not a JSON object"
        problem = problem or assignment_value_problem(var_type, item.operation, value)
        if problem:
            raise NodeFailure("assigner_invalid_operation", f"Item {index} ({target}): {problem}",
                              details={"item": index, "variable": target})
        current = call.pool.get_or_none(item.variable_selector)
        call.pool.assign(item.variable_selector, assigned_value(var_type, item.operation, current, value))
    return NodeOutput({})


EXECUTOR = NodeExecutor(resolve, execute)
